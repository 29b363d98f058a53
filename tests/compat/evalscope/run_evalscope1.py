"""Runs evalscope 1.x for real (its installed package, unmodified) on the synthetic GPQA CSV against the recording
server, then writes what it extracted and scored per question as JSON.
Usage: python run_evalscope1.py --csv FILE --port PORT --work DIR --out FILE
"""
import argparse
import glob
import json
import os
import shutil


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--csv', required=True)
    ap.add_argument('--port', required=True)
    ap.add_argument('--work', required=True)
    ap.add_argument('--out', required=True)
    a = ap.parse_args()
    data_dir = os.path.join(a.work, 'data')
    os.makedirs(data_dir, exist_ok=True)
    # A local dataset folder: evalscope loads it with datasets.load_dataset(folder, split='train').
    shutil.copy(a.csv, os.path.join(data_dir, 'train.csv'))

    from evalscope import TaskConfig, run_task

    cfg = TaskConfig(
        model='recorded',
        api_url=f'http://127.0.0.1:{a.port}/v1',
        api_key='EMPTY',
        eval_type='openai_api',
        datasets=['gpqa_diamond'],
        dataset_args={'gpqa_diamond': {'dataset_id': data_dir}},
        generation_config={'max_tokens': 256, 'temperature': 0.0},
        eval_batch_size=4,
        work_dir=os.path.join(a.work, 'outputs'),
        no_timestamp=True,
    )
    run_task(cfg)
    rows = []
    for path in glob.glob(os.path.join(a.work, 'outputs', '**', 'reviews', '**', '*.jsonl'), recursive=True):
        with open(path, encoding='utf-8') as f:
            rows.extend(json.loads(l) for l in f if l.strip())
    # What 1.x reads from a content (its message model cuts a <think> block) and the letter its parse_answers
    # finds there, for every scripted text (sent or not).
    import sys
    import types
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from evalscope.api.messages import ChatMessageAssistant
    from evalscope.utils.multi_choices import parse_answers
    from responses import EXTRA, RESPONSES
    state = types.SimpleNamespace(choices=['w', 'x', 'y', 'z'])
    extract = []
    for t in RESPONSES + EXTRA:
        completion = ChatMessageAssistant(content=t).text
        letters = ''.join(sorted(parse_answers(state, multiple_correct=False, completion=completion)))
        extract.append([t, completion, letters])
    with open(a.out, 'w', encoding='utf-8') as f:
        json.dump({'rows': rows, 'extract': extract}, f, ensure_ascii=False, indent=1)
    print(f'evalscope 1.x: {len(rows)} review rows')


if __name__ == '__main__':
    main()
