"""Runs evalscope 0.12.1's own GPQA code — `run_task`'s seeding, `GPQAAdapter` (prompt, option clean-up and
shuffle, letter extraction), `DataAdapter.gen_prompts`, `exact_match` and the `AveragePass@1` metric, all from its
PyPI wheel, unmodified — on the synthetic GPQA CSV against the recording server, then writes per question what it
sent, extracted and scored as JSON.

Stand-ins (modules a GPQA run imports but never calls for its numbers): the package `__init__`s of `evalscope`,
`evalscope.benchmarks` (it imports every adapter), `evalscope.metrics` (ROUGE/BLEU), `evalscope.utils` and
`evalscope.report`; `torch` and `sacrebleu` (`seed_everything` also seeds torch, which GPQA never uses). The HTTP
request is the one `ServerModelAdapter.make_request` builds (one user message), sent with urllib instead of the
`openai` client, non-streamed; the content of the first choice is what evalscope reviews.
Usage: python run_evalscope0.py --wheel-dir DIR --csv FILE --port PORT --out FILE
"""
import argparse
import csv
import json
import os
import sys
import types
import urllib.request


def stand_in_package(name, path):
    m = types.ModuleType(name)
    m.__path__ = [path]
    sys.modules[name] = m
    return m


def load_evalscope0(root):
    pkg = os.path.join(root, 'evalscope')
    stand_in_package('evalscope', pkg)
    for sub in ('benchmarks', 'metrics', 'utils'):
        stand_in_package(f'evalscope.{sub}', os.path.join(pkg, sub))
    import evalscope.constants  # noqa: F401  (real; imports modelscope for cache paths, before torch's stand-in)
    report = types.ModuleType('evalscope.report')
    report.Report = report.ReportGenerator = object
    sys.modules['evalscope.report'] = report
    sys.modules['sacrebleu'] = types.ModuleType('sacrebleu')
    import evalscope.metrics as metrics_pkg
    from evalscope.metrics import metrics
    metrics_pkg.exact_match = metrics.exact_match
    metrics_pkg.mean = metrics.mean
    from evalscope.benchmarks.data_adapter import DataAdapter
    from evalscope.benchmarks.benchmark import Benchmark
    sys.modules['evalscope.benchmarks'].Benchmark = Benchmark
    sys.modules['evalscope.benchmarks'].DataAdapter = DataAdapter
    from evalscope.benchmarks.gpqa import gpqa_adapter  # noqa: F401  (registers 'gpqa')
    # torch's stand-in only while `evalscope.utils.utils` (seed_everything) is imported, so that nothing else
    # mistakes it for an installed torch.
    torch = types.ModuleType('torch')
    torch.manual_seed = lambda seed: None
    torch.cuda = types.SimpleNamespace(is_available=lambda: False)
    sys.modules['torch'] = torch
    try:
        from evalscope.utils.utils import seed_everything
    finally:
        del sys.modules['torch']
    return Benchmark, seed_everything


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--wheel-dir', required=True)
    ap.add_argument('--csv', required=True)
    ap.add_argument('--port', required=True)
    ap.add_argument('--out', required=True)
    a = ap.parse_args()
    Benchmark, seed_everything = load_evalscope0(a.wheel_dir)

    # run_single_task: seed_everything(task_cfg.seed), the TaskConfig default seed being 42.
    seed_everything(42)
    adapter = Benchmark.get('gpqa').get_data_adapter(config={'few_shot_num': 0, 'subset_list': ['gpqa_diamond']})
    with open(a.csv, newline='', encoding='utf-8') as f:
        rows = list(csv.DictReader(f))
    prompts = adapter.gen_prompts({'gpqa_diamond': {'train': rows}})['gpqa_diamond']

    out = []
    review_results = []
    for index, p in enumerate(prompts):
        raw = p['raw_input']
        query = p['data'][0]
        body = {'model': 'recorded', 'messages': [{'role': 'user', 'content': query}],
                'max_tokens': 256, 'temperature': 0.0}
        req = urllib.request.Request(f'http://127.0.0.1:{a.port}/v1/chat/completions',
                                     data=json.dumps(body).encode(), headers={'Content-Type': 'application/json'})
        with urllib.request.urlopen(req) as r:
            content = json.loads(r.read())['choices'][0]['message']['content']
        pred = adapter.parse_pred_result(result=content, raw_input_d=raw, eval_type='service')
        gold = adapter.get_gold_answer(raw)
        result = adapter.match(gold, pred)
        review_results.append(result)
        out.append({'index': index, 'record_id': raw.get('Record ID'), 'prompt': query, 'gold': gold,
                    'response': content, 'pred': pred, 'result': result})
    metric = adapter.compute_metric(review_results)
    # The letter 0.x extracts from every scripted text (sent or not), through the adapter's own method.
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from responses import EXTRA, RESPONSES
    extract = [[t, adapter.parse_pred_result(result=t, raw_input_d={}, eval_type='service')] for t in RESPONSES + EXTRA]
    with open(a.out, 'w', encoding='utf-8') as f:
        json.dump({'rows': out, 'metric': metric, 'extract': extract}, f, ensure_ascii=False, indent=1)
    print(f'evalscope 0.12.1: {len(out)} questions, {metric}')


if __name__ == '__main__':
    main()
