"""Compares servebench with evalscope 0.12.1 and 1.14.1 on the same recorded traffic, question by question:
prompts byte for byte, option orders, extracted letters, verdicts and scores, for both protocols; also the letters
each version extracts from every scripted text. Writes the expected values (from the real code) to the fixture the
Rust unit tests read, prints a summary, and exits 1 on any difference.
Usage: python compare.py --csv FILE --runs DIR --fixture FILE
"""
import argparse
import csv
import json
import os
import re
import sys

ITEM = re.compile(r'\(Synthetic item (\d+),')


def read_jsonl(path):
    with open(path, encoding='utf-8') as f:
        return [json.loads(l) for l in f if l.strip()]


def option_texts(prompt, v1):
    pat = re.compile(r'^([A-D])\) (.*)$' if v1 else r'^\(([A-D])\) (.*)$', re.M)
    return [m.group(2) for m in pat.finditer(prompt)]


def letter(x):
    return x if x in ('A', 'B', 'C', 'D') else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--csv', required=True)
    ap.add_argument('--runs', required=True)
    ap.add_argument('--fixture', required=True)
    a = ap.parse_args()
    with open(a.csv, newline='', encoding='utf-8') as f:
        ids = [r['Record ID'] for r in csv.DictReader(f)]
    failures = []
    fixture = {
        'generated_by': 'tests/compat/evalscope/run.sh (real evalscope code; see its README)',
        'csv': 'tests/fixtures/eval/gpqa_synthetic.csv',
    }
    for proto, v1 in (('evalscope-0', False), ('evalscope-1', True)):
        d = os.path.join(a.runs, proto)
        tool = json.load(open(os.path.join(d, 'evalscope.json'), encoding='utf-8'))
        ours = {r['id']: r for r in read_jsonl(os.path.join(d, 'servebench', 'gpqa_diamond_predictions.jsonl'))}
        report = json.load(open(os.path.join(d, 'servebench', 'gpqa_diamond_report.json'), encoding='utf-8'))
        sent = {'evalscope': read_jsonl(os.path.join(d, 'evalscope_requests.jsonl')),
                'servebench': read_jsonl(os.path.join(d, 'servebench_requests.jsonl'))}
        if v1:
            theirs = {}
            for r in tool['rows']:
                s = r['sample_score']['score']
                theirs[ids[r['index']]] = {
                    'prompt': r['messages'][0]['content'] if isinstance(r['messages'][0], dict) else None,
                    'gold': r['target'][0] if isinstance(r['target'], list) else r['target'],
                    'letter': letter(s['extracted_prediction']),
                    'correct': s['value'].get('accuracy', s['value'].get('acc')) == 1.0,
                }
            tool_score = sum(t['correct'] for t in theirs.values()) / len(theirs)
        else:
            theirs = {r['record_id']: {'prompt': r['prompt'], 'gold': r['gold'], 'letter': letter(r['pred']),
                                       'correct': r['result'] == 1} for r in tool['rows']}
            tool_score = tool['metric'][0]['score']
        # Prompts as they went over the wire, per tool, keyed by question.
        wire = {}
        for name, bodies in sent.items():
            for b in bodies:
                text = b['messages'][-1]['content']
                n = int(ITEM.search(text).group(1))
                wire.setdefault(name, {})[ids[n - 1]] = text
        counts = dict(prompts=0, wire=0, orders=0, golds=0, letters=0, verdicts=0)
        for qid in ids:
            t, o = theirs[qid], ours[qid]
            same_prompt = t['prompt'] == o['prompt']
            checks = dict(
                prompts=same_prompt,
                wire=wire['evalscope'].get(qid) == wire['servebench'].get(qid),
                orders=option_texts(t['prompt'], v1) == option_texts(o['prompt'], v1),
                golds=t['gold'] == o['gold'],
                letters=t['letter'] == o['extracted'],
                verdicts=t['correct'] == o['correct'],
            )
            for k, ok in checks.items():
                counts[k] += ok
                if not ok:
                    failures.append(f'{proto} {qid} {k}: evalscope {t.get(k[:-1], t)!r} servebench {o!r}'[:600])
        score_ok = abs(tool_score - report['score']) < 1e-12
        if not score_ok:
            failures.append(f'{proto}: score evalscope {tool_score} servebench {report["score"]}')
        n = len(ids)
        print(f'{proto}: prompts {counts["prompts"]}/{n} byte-equal (on the wire {counts["wire"]}/{n}), option orders '
              f'{counts["orders"]}/{n}, golds {counts["golds"]}/{n}, letters {counts["letters"]}/{n}, verdicts '
              f'{counts["verdicts"]}/{n}; score evalscope {tool_score:.4f} servebench {report["score"]:.4f}'
              f'{"" if score_ok else "  DIFFERENT"}')
        entry = {
            'prompts': {qid: theirs[qid]['prompt'] for qid in ids},
            'gold': {qid: theirs[qid]['gold'] for qid in ids},
            'score': tool_score,
        }
        if v1:
            entry['extract'] = [{'content': c, 'completion': comp, 'letter': letter(l)} for c, comp, l in tool['extract']]
        else:
            entry['extract'] = [{'content': c, 'pred': p, 'letter': letter(p)} for c, p in tool['extract']]
        fixture[proto] = entry
    with open(a.fixture, 'w', encoding='utf-8') as f:
        json.dump(fixture, f, ensure_ascii=False, indent=1)
        f.write('\n')
    print(f'expected values written to {a.fixture}')
    if failures:
        print(f'{len(failures)} differences:')
        for x in failures[:50]:
            print('  ' + x)
        sys.exit(1)
    print('servebench equals evalscope 0.12.1 and 1.14.1 on every question')


if __name__ == '__main__':
    main()
