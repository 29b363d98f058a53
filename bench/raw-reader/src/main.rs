//! raw-reader: a minimal streaming load client (HTTP framing and an event count), the yardstick of bench/.
//!
//! Opens `--concurrency` keep-alive HTTP/1.1 connections, and on each sends the same POST again and again until
//! `--requests` responses have been read in all. Of each response it decodes only the HTTP framing (status line,
//! headers, chunked transfer coding) and counts payload bytes and SSE events (`\n\n`); it never looks at the
//! JSON. What a load tester does beyond this (SSE parsing, JSON decoding, timestamps, records) is its overhead.
//!
//! With `--trace FILE`, it also writes one JSON line per request: `{"id", "send_unix_ns", "chunk_ns": [...]}`,
//! the Unix time of the read that completed each SSE event except the final `[DONE]` (for a completions stream
//! without usage every other event carries text). That is the floor of timestamp error any client can reach.
//!
//! Output (stdout, one JSON line): requests, ok, failed, bytes, events, duration_s (first send to last end),
//! cpu_s (user+sys of this process during that time), first_send_unix_ns, last_end_unix_ns.
//!
//! Run it on one core (`taskset -c 1`): the runtime is single-threaded.

use std::cell::RefCell;
use std::io::Write as _;
use std::rc::Rc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

struct Opts {
    host_port: String,
    path: String,
    body: Vec<u8>,
    concurrency: usize,
    requests: usize,
    trace: Option<String>,
    id_prefix: String,
    read_buf: usize,
    /// Open loop: request `i` starts at the i-th arrival of a Poisson process of this rate (requests/s).
    request_rate: Option<f64>,
}

fn usage() -> ! {
    eprintln!(
        "usage: raw-reader --url http://HOST:PORT/PATH (--body JSON | --body-file FILE) --concurrency C --requests N \
         [--trace FILE] [--id-prefix P] [--read-buf BYTES] [--request-rate R]"
    );
    std::process::exit(2)
}

fn parse_opts() -> Result<Opts, String> {
    let mut url = None;
    let mut body = None;
    let mut concurrency = 1usize;
    let mut requests = None;
    let mut trace = None;
    let mut id_prefix = "raw".to_string();
    let mut read_buf = 64 * 1024;
    let mut request_rate = None;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut val = || it.next().ok_or_else(|| format!("{a} needs a value"));
        match a.as_str() {
            "--url" => url = Some(val()?),
            "--body" => body = Some(val()?.into_bytes()),
            "--body-file" => {
                let p = val()?;
                body = Some(std::fs::read(&p).map_err(|e| format!("--body-file {p}: {e}"))?)
            }
            "--concurrency" => {
                concurrency = val()?.parse().map_err(|e| format!("--concurrency: {e}"))?
            }
            "--requests" => {
                requests = Some(val()?.parse().map_err(|e| format!("--requests: {e}"))?)
            }
            "--trace" => trace = Some(val()?),
            "--id-prefix" => id_prefix = val()?,
            "--read-buf" => read_buf = val()?.parse().map_err(|e| format!("--read-buf: {e}"))?,
            "--request-rate" => {
                let r: f64 = val()?.parse().map_err(|e| format!("--request-rate: {e}"))?;
                if !(r.is_finite() && r > 0.0) {
                    return Err("--request-rate must be a positive number".into());
                }
                request_rate = Some(r)
            }
            "-h" | "--help" => usage(),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    let url = url.ok_or("--url is required")?;
    let rest = url
        .strip_prefix("http://")
        .ok_or("--url must start with http://")?;
    let (host_port, path) = match rest.find('/') {
        Some(i) => (rest[..i].to_string(), rest[i..].to_string()),
        None => (rest.to_string(), "/".to_string()),
    };
    let body = body.ok_or("--body or --body-file is required")?;
    let requests: usize = requests.ok_or("--requests is required")?;
    if concurrency == 0 || requests == 0 {
        return Err("--concurrency and --requests must be at least 1".into());
    }
    Ok(Opts {
        host_port,
        path,
        body,
        concurrency,
        requests,
        trace,
        id_prefix,
        read_buf,
        request_rate,
    })
}

fn unix_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return f64::NAN;
    };
    let Some(i) = stat.rfind(')') else {
        return f64::NAN;
    };
    let f: Vec<&str> = stat[i + 2..].split_whitespace().collect();
    let t = |k: usize| {
        f.get(k)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    (t(11) + t(12)) / 100.0
}

/// Chunked transfer decoding state.
#[derive(Clone, Copy)]
enum Chunked {
    Size { val: usize, ext: bool },
    Data(usize),
    DataEnd(u8),
    Trailer { line_len: usize },
    Done,
}

enum Framing {
    Chunked(Chunked),
    Length(usize),
    Close,
}

#[derive(Default)]
struct Totals {
    ok: u64,
    failed: u64,
    bytes: u64,
    events: u64,
    first_send: Option<Instant>,
    last_end: Option<Instant>,
    errors: Vec<String>,
}

struct Shared {
    next: usize,
    /// Open loop: when each request starts, after t0 (seconds).
    arrivals: Vec<f64>,
    totals: Totals,
    trace: Option<std::io::BufWriter<std::fs::File>>,
}

/// Payload bytes: count `\n\n` (SSE event ends); `prev_nl` carries the last byte across calls.
#[inline]
fn count_events(
    payload: &[u8],
    prev_nl: &mut bool,
    t_ns: u64,
    marks: Option<&mut Vec<u64>>,
) -> u64 {
    let mut n = 0u64;
    let mut p = *prev_nl;
    for &b in payload {
        let nl = b == b'\n';
        n += (nl & p) as u64;
        p = nl & !p; // a third newline does not end a second event
    }
    *prev_nl = p;
    if let Some(m) = marks {
        m.extend(std::iter::repeat_n(t_ns, n as usize));
    }
    n
}

/// `n` arrival times (seconds) of a Poisson process of `rate` per second: exponential gaps from a seeded
/// xorshift64* generator (deterministic per seed; the first request starts at 0).
fn poisson_arrivals(rate: f64, n: usize, seed: u64) -> Vec<f64> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut t = 0.0;
    (0..n)
        .map(|i| {
            if i > 0 {
                x ^= x >> 12;
                x ^= x << 25;
                x ^= x >> 27;
                let u = (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64;
                t += -(1.0 - u).ln() / rate;
            }
            t
        })
        .collect()
}

fn find_head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

fn parse_head(head: &[u8]) -> Result<(u16, Framing, bool), String> {
    let text = std::str::from_utf8(head).map_err(|_| "response head is not UTF-8".to_string())?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let mut framing = Framing::Close;
    let mut close = false;
    for l in lines {
        let Some((k, v)) = l.split_once(':') else {
            continue;
        };
        let v = v.trim();
        if k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked") {
            framing = Framing::Chunked(Chunked::Size { val: 0, ext: false });
        } else if k.eq_ignore_ascii_case("content-length") {
            if !matches!(framing, Framing::Chunked(_)) {
                framing =
                    Framing::Length(v.parse().map_err(|_| format!("bad content-length {v:?}"))?);
            }
        } else if k.eq_ignore_ascii_case("connection") && v.eq_ignore_ascii_case("close") {
            close = true;
        }
    }
    Ok((status, framing, close))
}

/// Feeds body bytes through the framing; returns (payload bytes, events, finished).
fn feed_body(
    framing: &mut Framing,
    mut data: &[u8],
    prev_nl: &mut bool,
    t_ns: u64,
    mut marks: Option<&mut Vec<u64>>,
) -> (u64, u64, bool) {
    let mut bytes = 0u64;
    let mut events = 0u64;
    match framing {
        Framing::Length(rem) => {
            let take = data.len().min(*rem);
            bytes += take as u64;
            events += count_events(&data[..take], prev_nl, t_ns, marks);
            *rem -= take;
            (bytes, events, *rem == 0)
        }
        Framing::Close => {
            bytes += data.len() as u64;
            events += count_events(data, prev_nl, t_ns, marks);
            (bytes, events, false)
        }
        Framing::Chunked(st) => {
            while !data.is_empty() {
                match st {
                    Chunked::Size { val, ext } => {
                        let b = data[0];
                        data = &data[1..];
                        match b {
                            b'\n' => {
                                *st = if *val == 0 {
                                    Chunked::Trailer { line_len: 0 }
                                } else {
                                    Chunked::Data(*val)
                                }
                            }
                            b'\r' => {}
                            b';' => *ext = true,
                            _ if *ext => {}
                            _ => {
                                let d = (b as char).to_digit(16).unwrap_or(0) as usize;
                                *val = *val * 16 + d;
                            }
                        }
                    }
                    Chunked::Data(rem) => {
                        let take = data.len().min(*rem);
                        bytes += take as u64;
                        events += count_events(&data[..take], prev_nl, t_ns, marks.as_deref_mut());
                        data = &data[take..];
                        *rem -= take;
                        if *rem == 0 {
                            *st = Chunked::DataEnd(2);
                        }
                    }
                    Chunked::DataEnd(k) => {
                        data = &data[1..];
                        *k -= 1;
                        if *k == 0 {
                            *st = Chunked::Size { val: 0, ext: false };
                        }
                    }
                    Chunked::Trailer { line_len } => {
                        let b = data[0];
                        data = &data[1..];
                        if b == b'\n' {
                            if *line_len == 0 {
                                *st = Chunked::Done;
                            } else {
                                *line_len = 0;
                            }
                        } else if b != b'\r' {
                            *line_len += 1;
                        }
                    }
                    Chunked::Done => break,
                }
            }
            (bytes, events, matches!(st, Chunked::Done))
        }
    }
}

async fn worker(opts: Rc<Opts>, shared: Rc<RefCell<Shared>>, t0: Instant, t0_unix: u64) {
    let mut conn: Option<TcpStream> = None;
    let mut buf = vec![0u8; opts.read_buf];
    let mut req = Vec::with_capacity(opts.body.len() + 256);
    let tracing = opts.trace.is_some();
    loop {
        let ticket = {
            let mut s = shared.borrow_mut();
            if s.next >= opts.requests {
                return;
            }
            s.next += 1;
            s.next - 1
        };
        let at = shared.borrow().arrivals.get(ticket).copied();
        if let Some(at) = at {
            tokio::time::sleep_until((t0 + std::time::Duration::from_secs_f64(at)).into()).await;
        }
        let id = format!("{}-{}", opts.id_prefix, ticket);
        req.clear();
        let _ = write!(
            req,
            "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nAccept: text/event-stream\r\n\
             x-request-id: {}\r\nContent-Length: {}\r\n\r\n",
            opts.path,
            opts.host_port,
            id,
            opts.body.len()
        );
        req.extend_from_slice(&opts.body);
        let result = async {
            if conn.is_none() {
                let s = TcpStream::connect(&opts.host_port)
                    .await
                    .map_err(|e| format!("connect: {e}"))?;
                s.set_nodelay(true).map_err(|e| format!("nodelay: {e}"))?;
                conn = Some(s);
            }
            let Some(s) = conn.as_mut() else {
                return Err("no connection".to_string());
            };
            let send = Instant::now();
            {
                let mut sh = shared.borrow_mut();
                if sh.totals.first_send.is_none() {
                    sh.totals.first_send = Some(send);
                }
            }
            s.write_all(&req).await.map_err(|e| format!("write: {e}"))?;
            let mut head: Vec<u8> = Vec::new();
            let mut framing: Option<Framing> = None;
            let mut close = false;
            let mut prev_nl = false;
            let mut bytes = 0u64;
            let mut events = 0u64;
            let mut marks: Vec<u64> = Vec::new();
            let mut status = 0u16;
            loop {
                let n = s.read(&mut buf).await.map_err(|e| format!("read: {e}"))?;
                let t_ns = if tracing {
                    t0_unix + t0.elapsed().as_nanos() as u64
                } else {
                    0
                };
                if n == 0 {
                    if matches!(framing, Some(Framing::Close)) {
                        close = true;
                        break;
                    }
                    return Err("connection closed mid-response".into());
                }
                let data = &buf[..n];
                if framing.is_none() {
                    head.extend_from_slice(data);
                    let Some(end) = find_head_end(&head) else {
                        continue;
                    };
                    let (st, fr, cl) = parse_head(&head[..end])?;
                    status = st;
                    framing = Some(fr);
                    close = cl;
                    let rest = head.split_off(end);
                    let Some(fr) = framing.as_mut() else {
                        unreachable!()
                    };
                    let (b, e, done) =
                        feed_body(fr, &rest, &mut prev_nl, t_ns, tracing.then_some(&mut marks));
                    bytes += b;
                    events += e;
                    if done {
                        break;
                    }
                    continue;
                }
                let Some(fr) = framing.as_mut() else {
                    unreachable!()
                };
                let (b, e, done) =
                    feed_body(fr, data, &mut prev_nl, t_ns, tracing.then_some(&mut marks));
                bytes += b;
                events += e;
                if done {
                    break;
                }
            }
            let end = Instant::now();
            if close {
                conn = None;
            }
            Ok((status, bytes, events, send, end, marks))
        }
        .await;
        let mut sh = shared.borrow_mut();
        match result {
            Ok((status, bytes, events, send, end, mut marks)) => {
                if status == 200 {
                    sh.totals.ok += 1;
                } else {
                    sh.totals.failed += 1;
                    if sh.totals.errors.len() < 5 {
                        sh.totals.errors.push(format!("HTTP {status}"));
                    }
                }
                sh.totals.bytes += bytes;
                sh.totals.events += events;
                sh.totals.last_end = Some(sh.totals.last_end.map_or(end, |l| l.max(end)));
                if let Some(w) = sh.trace.as_mut() {
                    marks.pop(); // [DONE]
                    let send_ns = t0_unix + send.duration_since(t0).as_nanos() as u64;
                    let _ = write!(w, "{{\"id\":\"{id}\",\"status\":{status},\"send_unix_ns\":{send_ns},\"chunk_ns\":[");
                    for (i, m) in marks.iter().enumerate() {
                        let _ = write!(w, "{}{}", if i == 0 { "" } else { "," }, m);
                    }
                    let _ = writeln!(w, "]}}");
                }
            }
            Err(e) => {
                conn = None;
                sh.totals.failed += 1;
                if sh.totals.errors.len() < 5 {
                    sh.totals.errors.push(e);
                }
            }
        }
    }
}

fn main() {
    let opts = match parse_opts() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("raw-reader: {e}");
            usage()
        }
    };
    let trace = match &opts.trace {
        Some(p) => match std::fs::File::create(p) {
            Ok(f) => Some(std::io::BufWriter::new(f)),
            Err(e) => {
                eprintln!("raw-reader: --trace {p}: {e}");
                std::process::exit(1)
            }
        },
        None => None,
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("raw-reader: cannot start the runtime: {e}");
            std::process::exit(1)
        }
    };
    let opts = Rc::new(opts);
    let arrivals = opts
        .request_rate
        .map(|r| poisson_arrivals(r, opts.requests, 1))
        .unwrap_or_default();
    let shared = Rc::new(RefCell::new(Shared {
        next: 0,
        arrivals,
        totals: Totals::default(),
        trace,
    }));
    let cpu0 = cpu_seconds();
    let t0 = Instant::now();
    let t0_unix = unix_ns();
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async {
        let mut handles = Vec::new();
        for _ in 0..opts.concurrency.min(opts.requests) {
            handles.push(tokio::task::spawn_local(worker(
                opts.clone(),
                shared.clone(),
                t0,
                t0_unix,
            )));
        }
        for h in handles {
            let _ = h.await;
        }
    });
    let cpu1 = cpu_seconds();
    let mut sh = shared.borrow_mut();
    if let Some(mut w) = sh.trace.take() {
        let _ = w.flush();
    }
    let t = &sh.totals;
    let (dur, first_ns, last_ns) = match (t.first_send, t.last_end) {
        (Some(a), Some(b)) => (
            b.duration_since(a).as_secs_f64(),
            t0_unix + a.duration_since(t0).as_nanos() as u64,
            t0_unix + b.duration_since(t0).as_nanos() as u64,
        ),
        _ => (0.0, 0, 0),
    };
    let errs: Vec<String> = t.errors.iter().map(|e| format!("{e:?}")).collect();
    println!(
        "{{\"tool\":\"raw-reader\",\"concurrency\":{},\"requests\":{},\"ok\":{},\"failed\":{},\"bytes\":{},\"events\":{},\
         \"duration_s\":{:.6},\"cpu_s\":{:.3},\"first_send_unix_ns\":{},\"last_end_unix_ns\":{},\"errors\":[{}]}}",
        opts.concurrency,
        opts.requests,
        t.ok,
        t.failed,
        t.bytes,
        t.events,
        dur,
        cpu1 - cpu0,
        first_ns,
        last_ns,
        errs.join(",")
    );
}

#[cfg(test)]
mod tests {
    #[test]
    fn poisson_arrivals_are_seeded_and_near_the_rate() {
        let a = poisson_arrivals(50.0, 20_001, 1);
        assert_eq!(a, poisson_arrivals(50.0, 20_001, 1));
        assert_eq!(a[0], 0.0);
        assert!(a.windows(2).all(|w| w[1] >= w[0]));
        // 20,000 gaps of mean 1/50 s: 400 s within a few percent.
        assert!((a[20_000] - 400.0).abs() < 12.0, "{}", a[20_000]);
    }

    use super::*;

    #[test]
    fn chunked_body_counts_events_and_ends() {
        let body = b"19\r\ndata: {\"x\":1}\n\ndata: {\"y\"\r\n5\r\n:2}\n\n\r\n0\r\n\r\n";
        let mut fr = Framing::Chunked(Chunked::Size { val: 0, ext: false });
        let mut prev = false;
        let mut total = (0, 0);
        // Feed one byte at a time: state must carry across reads.
        let mut done = false;
        for b in body.iter() {
            let (n, e, d) = feed_body(&mut fr, std::slice::from_ref(b), &mut prev, 0, None);
            total.0 += n;
            total.1 += e;
            done = d;
        }
        assert!(done);
        assert_eq!(total, (30, 2));
    }

    #[test]
    fn three_newlines_are_one_event_end() {
        let mut prev = false;
        assert_eq!(count_events(b"a\n\n\nb\n\n", &mut prev, 0, None), 2);
        let mut prev = false;
        assert_eq!(count_events(b"a\n", &mut prev, 0, None), 0);
        assert_eq!(count_events(b"\nb", &mut prev, 0, None), 1);
    }

    #[test]
    fn head_parsing() {
        let (s, f, c) = parse_head(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        )
        .unwrap();
        assert_eq!(s, 200);
        assert!(matches!(f, Framing::Chunked(_)));
        assert!(c);
        let (_, f, _) = parse_head(b"HTTP/1.1 422 X\r\ncontent-length: 12\r\n\r\n").unwrap();
        assert!(matches!(f, Framing::Length(12)));
    }
}
