"""The workloads the real sglang.bench_serving 0.5.9 draws, as fixtures for servebench's tests.

Runs sglang's own sampling functions (`sample_random_requests`, `sample_sharegpt_requests`,
`sample_custom_requests`) after seeding as its `run_benchmark` does (`random.seed(seed)`, `np.random.seed(seed)`,
nothing drawn in between), with two real tokenizers loaded through transformers as sglang loads them, on the
ShareGPT fixture in the repository. It records every request's input length, output length and the SHA-256 of
its prompt text.

Without --write it compares what sglang draws now with tests/compat/fixtures/sglang_workload.json (the file
servebench's `cargo test` checks itself against, in crates/load/src/sglang_fixture_tests.rs) and exits 1 on any
difference. With --write it regenerates that file (and the custom JSONL fixture).

Usage: tests/compat/sglang_workload.sh PYTHON [--write]
  PYTHON: a Python with sglang==0.5.9, transformers and numpy (torch not needed).
"""

import argparse
import gzip
import hashlib
import importlib.machinery
import json
import os
import random
import sys
import tempfile
import types

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
FIXTURES = os.path.join(HERE, "fixtures")
EXPECTED = os.path.join(FIXTURES, "sglang_workload.json")
SHAREGPT = os.path.join(ROOT, "tests", "fixtures", "sharegpt", "sharegpt_small.json")
CUSTOM = os.path.join(FIXTURES, "custom_conversations.jsonl")
TOKENIZER_GZ = os.path.join(ROOT, "crates", "tokenize", "assets", "smollm2-tokenizer.json.gz")
BOS_VARIANT = os.path.join(FIXTURES, "smollm2_bos_variant.json")
LLAMA_CLASS = os.path.join(FIXTURES, "smollm2_llama_class.json")

SEEDS = [0, 1, 42]
# (input len, output len, range ratio, prompts): the seed's two workloads and a third.
RANDOM_WORKLOADS = [(3500, 1500, 0.7, 12), (5600, 1400, 0.8, 12), (1024, 128, 0.25, 12)]
RANDOM_IDS_WORKLOADS = [(1024, 128, 0.25, 8)]
# (prompts, --sharegpt-output-len, --sharegpt-context-len)
SHAREGPT_CASES = [(30, None, None), (20, 64, 1024)]
CUSTOM_CASES = [(15, None, None), (10, 32, 600)]
# A smaller plan for the Llama-class tokenizer (its special tokens come from transformers' class, not the file).
SMALL_PLAN = {
    "random": [(1024, 128, 0.25, 12)],
    "random-ids": [(1024, 128, 0.25, 8)],
    "sharegpt": [(30, None, None)],
    "custom": [(15, None, None)],
}
FULL_PLAN = {
    "random": RANDOM_WORKLOADS,
    "random-ids": RANDOM_IDS_WORKLOADS,
    "sharegpt": SHAREGPT_CASES,
    "custom": CUSTOM_CASES,
}


def import_bench_serving():
    """sglang.bench_serving imports `datasets` at the top but uses it only for the mmmu dataset: when the
    installed `datasets` cannot be imported, a stand-in takes its place (nothing here calls it)."""
    try:
        import datasets  # noqa: F401
    except Exception:
        stub = types.ModuleType("datasets")
        stub.__spec__ = importlib.machinery.ModuleSpec("datasets", None)

        def load_dataset(*_a, **_k):
            raise RuntimeError("stand-in: datasets is not used by these workloads")

        stub.load_dataset = load_dataset
        sys.modules["datasets"] = stub
    import sglang.bench_serving as bs

    return bs


def tokenizer_dirs(tmp):
    """Three tokenizer folders as transformers loads them: the built-in SmolLM2 one, its BOS variant (the
    post-processor in tokenizer.json adds a BOS) and its Llama-class variant (transformers' class adds BOS and EOS)."""
    with gzip.open(TOKENIZER_GZ, "rt", encoding="utf-8") as f:
        base = json.load(f)
    with open(BOS_VARIANT, encoding="utf-8") as f:
        variant = json.load(f)
    with open(LLAMA_CLASS, encoding="utf-8") as f:
        llama = json.load(f)
    plain_cfg = {"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<|im_start|>", "eos_token": "<|im_end|>"}
    out = {}
    for name, tok_json, cfg in [
        ("smollm2", base, plain_cfg),
        ("smollm2-bos", dict(base, post_processor=variant["post_processor"]), variant["tokenizer_config"]),
        ("smollm2-llama", base, llama["tokenizer_config"]),
    ]:
        d = os.path.join(tmp, name)
        os.makedirs(d)
        with open(os.path.join(d, "tokenizer.json"), "w", encoding="utf-8") as f:
            json.dump(tok_json, f, ensure_ascii=False)
        with open(os.path.join(d, "tokenizer_config.json"), "w", encoding="utf-8") as f:
            json.dump(cfg, f)
        out[name] = d
    return out


def write_custom_fixture():
    """sglang's custom JSONL, from the ShareGPT fixture: both conversation keys, both turn keys, a short
    conversation and a line that is not JSON (sglang skips both)."""
    with open(SHAREGPT, encoding="utf-8") as f:
        convs = json.load(f)
    lines = []
    for i, c in enumerate(convs[:40]):
        turns = c["conversations"][:2]
        if i % 3 == 0:
            turns = [{"role": "user" if j == 0 else "assistant", "content": t["value"]} for j, t in enumerate(turns)]
        key = "conversation" if i % 4 == 1 else "conversations"
        lines.append(json.dumps({key: turns}, ensure_ascii=False))
        if i == 5:
            lines.append("{not json")
        if i == 9:
            lines.append(json.dumps({"conversations": turns[:1]}, ensure_ascii=False))
    with open(CUSTOM, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


def rows_of(rows):
    return [
        {
            "prompt_len": int(r.prompt_len),
            "output_len": int(r.output_len),
            "prompt_sha256": hashlib.sha256(r.prompt.encode("utf-8")).hexdigest(),
        }
        for r in rows
    ]


def seed_all(seed):
    # What run_benchmark does before anything else draws.
    import numpy as np

    random.seed(seed)
    np.random.seed(seed)


def generate(bs, toks):
    cases = []
    for tok_name, tok_dir in toks.items():
        tok = bs.get_tokenizer(tok_dir)
        plan = SMALL_PLAN if tok_name == "smollm2-llama" else FULL_PLAN
        for seed in SEEDS:
            for dataset in ["random", "random-ids"]:
                workloads = plan[dataset]
                for inp, out, ratio, n in workloads:
                    seed_all(seed)
                    rows = bs.sample_random_requests(
                        input_len=inp,
                        output_len=out,
                        num_prompts=n,
                        range_ratio=ratio,
                        tokenizer=tok,
                        dataset_path=SHAREGPT,
                        random_sample=dataset == "random",
                        return_text=True,
                    )
                    cases.append(
                        {
                            "dataset": dataset,
                            "tokenizer": tok_name,
                            "seed": seed,
                            "input_len": inp,
                            "output_len": out,
                            "range_ratio": ratio,
                            "num_prompts": n,
                            "special_tokens": int(tok.num_special_tokens_to_add()),
                            "rows": rows_of(rows),
                        }
                    )
            for dataset, path, sampler in [
                ("sharegpt", SHAREGPT, bs.sample_sharegpt_requests),
                ("custom", CUSTOM, bs.sample_custom_requests),
            ]:
                for n, fixed, ctx in plan[dataset]:
                    seed_all(seed)
                    rows = sampler(
                        dataset_path=path,
                        num_requests=n,
                        tokenizer=tok,
                        fixed_output_len=fixed,
                        context_len=ctx,
                    )
                    cases.append(
                        {
                            "dataset": dataset,
                            "tokenizer": tok_name,
                            "seed": seed,
                            "num_prompts": n,
                            "sharegpt_output_len": fixed,
                            "sharegpt_context_len": ctx,
                            "rows": rows_of(rows),
                        }
                    )
    return cases


def versions():
    from importlib.metadata import version

    return {p: version(p) for p in ["sglang", "transformers", "tokenizers", "numpy"]}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--write", action="store_true", help="regenerate the fixtures instead of comparing")
    a = ap.parse_args()
    v = versions()
    if v["sglang"] != "0.5.9":
        print(f"warning: sglang {v['sglang']} installed; the fixtures describe 0.5.9", file=sys.stderr)
    if a.write:
        write_custom_fixture()
    bs = import_bench_serving()
    with tempfile.TemporaryDirectory() as tmp:
        cases = generate(bs, tokenizer_dirs(tmp))
    if a.write:
        doc = {
            "about": "Workloads drawn by the real sglang.bench_serving 0.5.9 (tests/compat/sglang_workload.py --write); "
            "servebench's tests check they draw the same.",
            "versions": v,
            "cases": cases,
        }
        with open(EXPECTED, "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=1)
            f.write("\n")
        print(f"wrote {len(cases)} cases to {EXPECTED}")
        return 0
    with open(EXPECTED, encoding="utf-8") as f:
        expected = json.load(f)["cases"]
    bad = 0
    for want, got in zip(expected, cases):
        if want != got:
            bad += 1
            label = {k: want.get(k) for k in ["dataset", "tokenizer", "seed", "input_len", "num_prompts"]}
            print(f"DIFFERS: {label}")
    if len(expected) != len(cases):
        print(f"DIFFERS: {len(expected)} cases in the fixture, {len(cases)} generated")
        bad += 1
    if bad:
        print(f"{bad} of {len(cases)} cases differ from {EXPECTED}")
        return 1
    print(f"all {len(cases)} cases equal to sglang {v['sglang']} (transformers {v['transformers']}, numpy {v['numpy']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
