//! `servebench sim` as a user runs it: a server process that prints its URL and serves until stopped.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// Kills the server process when the test ends, whatever happens.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `servebench sim ARGS… --port 0` and returns it with the URL from its ready line.
fn start(args: &[&str]) -> (Server, String, String) {
    let child = Command::new(env!("CARGO_BIN_EXE_servebench"))
        .arg("sim")
        .args(args)
        .args(["--port", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("servebench runs");
    let mut server = Server(child);
    let stdout = server.0.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("a ready line");
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no URL in {line:?}"))
        .to_string();
    (server, url, line)
}

/// One HTTP/1.1 exchange on a fresh connection (`Connection: close`); returns the raw response.
fn http(url: &str, method: &str, path: &str, body: &str) -> String {
    use std::io::{Read, Write};
    let addr = url.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).expect("send");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read");
    out
}

#[test]
fn sim_command_serves_the_openai_and_sglang_apis() {
    let (_server, url, line) = start(&["--preset", "fast", "--model", "demo-model", "--seed", "3"]);
    assert!(
        line.contains("preset fast") && line.contains("demo-model"),
        "{line}"
    );
    let models = http(&url, "GET", "/v1/models", "");
    assert!(models.starts_with("HTTP/1.1 200"), "{models}");
    assert!(models.contains("x-sim-request-id: sim-"), "{models}");
    assert!(models.contains("\"id\":\"demo-model\""), "{models}");
    let info = http(&url, "GET", "/get_server_info", "");
    assert!(
        info.contains("\"simulated\":true") && info.contains("\"seed\":3"),
        "{info}"
    );
    let body = r#"{"text": "Hello world", "stream": true, "sampling_params": {"max_new_tokens": 6, "ignore_eos": true}}"#;
    let stream = http(&url, "POST", "/generate", body);
    assert!(stream.contains("text/event-stream"), "{stream}");
    assert!(stream.contains("data: [DONE]"), "{stream}");
    assert_eq!(stream.matches("data: {").count(), 6, "{stream}");
    // the built-in tokenizer counts the prompt: "Hello world" is 2 tokens
    assert!(stream.contains("\"prompt_tokens\":2"), "{stream}");
}

#[test]
fn sim_command_refuses_bad_flags() {
    let out = Command::new(env!("CARGO_BIN_EXE_servebench"))
        .args(["sim", "--preset", "warp-speed", "--port", "0"])
        .output()
        .expect("servebench runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unknown preset") && err.contains("firehose"),
        "{err}"
    );
}

/// Every filler word of the simulator is one token, alone and in a run, so re-tokenized output counts exactly
/// `completion_tokens`: the built-in tokenizer always, the real ones of `../shared/tokenizers` when present.
#[test]
fn simulator_words_are_single_tokens() {
    use servebench::sim::words::WORDS;
    use servebench::tokenize::Tokenizer;
    let mut tokenizers = vec![(
        "builtin".to_string(),
        Tokenizer::builtin().expect("builtin tokenizer"),
    )];
    let shared = crate::common::root().join("../shared/tokenizers");
    if shared.exists() {
        for name in ["deepseek", "qwen2", "llama3", "smollm2"] {
            tokenizers.push((
                name.to_string(),
                Tokenizer::from_path(shared.join(name)).expect(name),
            ));
        }
    } else {
        eprintln!("../shared/tokenizers not present: only the built-in tokenizer was checked");
    }
    // a run of words in a scrambled order, as the simulator streams them
    let run: String = (0..WORDS.len() * 3)
        .map(|i| WORDS[(i * 37 + 11) % WORDS.len()])
        .collect();
    for (name, tok) in &tokenizers {
        for w in WORDS {
            assert_eq!(tok.count(w).expect("encode"), 1, "{name}: {w:?}");
        }
        assert_eq!(tok.count(&run).expect("encode"), WORDS.len() * 3, "{name}");
    }
}
