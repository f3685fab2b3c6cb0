"""Encoding kernels for MiniLM on CPU, one run: fp32 torch, bf16 autocast (kira's default), int8
dynamic quantization (torch), ONNX Runtime fp32 and int8 -- passages/s, cosine to fp32 and top-20
agreement of a passage-to-passage search, on the demo's own passage mix.

Why: the index build's time is encoding; a kernel only counts if it keeps the vectors (cos >= 0.99
to fp32, top-20 unchanged). ONNX rows need ``pip install onnx`` (export) and onnxruntime.

    python bench/encode_kernels.py --n 1500 --out bench/regressions/
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from kira import benchmarks  # noqa: E402


def onnx_encoder(enc, tmp: str, int8: bool) -> Callable[[list[str]], np.ndarray]:
    """Export ``enc``'s model to ONNX (optionally int8 dynamic), return an encode function with the
    same bucketing and mean pooling as kira's."""
    import onnxruntime as ort

    class Wrap(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, ids, mask, types):
            return self.m(input_ids=ids, attention_mask=mask, token_type_ids=types).last_hidden_state

    path = os.path.join(tmp, "model.onnx")
    if not os.path.exists(path):
        d = enc.tokenizer(["hello world"], return_tensors="pt")
        axes = {k: {0: "b", 1: "s"} for k in ("ids", "mask", "types", "out")}
        torch.onnx.export(Wrap(enc.model).eval(), (d["input_ids"], d["attention_mask"], d["token_type_ids"]), path,
                          input_names=["ids", "mask", "types"], output_names=["out"], dynamic_axes=axes,
                          opset_version=17, dynamo=False)
    if int8:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        qpath = os.path.join(tmp, "model-int8.onnx")
        quantize_dynamic(path, qpath, weight_type=QuantType.QInt8)
        path = qpath
    so = ort.SessionOptions()
    so.intra_op_num_threads = torch.get_num_threads()
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])

    def encode(texts: list[str], batch_size: int = 64) -> np.ndarray:
        out = np.zeros((len(texts), enc.dim), np.float32)
        order = np.argsort([-len(t) for t in texts], kind="stable")
        for s in range(0, len(texts), batch_size):
            idx = order[s:s + batch_size]
            b = enc.tokenizer([texts[i] for i in idx], padding=True, truncation=True, max_length=enc.max_length,
                              return_tensors="np")
            h = sess.run(None, {"ids": b["input_ids"].astype(np.int64), "mask": b["attention_mask"].astype(np.int64),
                                "types": b["token_type_ids"].astype(np.int64)})[0]
            m = b["attention_mask"][..., None]
            out[idx] = (h * m).sum(1) / m.sum(1)
        return out

    return encode


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1500)
    ap.add_argument("--queries", type=int, default=200, help="passages used as queries for the top-20 check")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    load = benchmarks.machine_load()
    out = benchmarks.out_path(args.out, __file__)

    from kira.plm import TextEncoder
    from kira.reader.generate import docs_from_wordnet

    texts = [d.text for d in docs_from_wordnet(max_docs=args.n, seed=1)]
    fp32 = TextEncoder("minilm-l6", max_length=256, bf16=False)
    bf16 = TextEncoder("minilm-l6", max_length=256, bf16=True)
    q8 = TextEncoder("minilm-l6", max_length=256, bf16=False)
    q8.model = torch.ao.quantization.quantize_dynamic(q8.model, {torch.nn.Linear}, dtype=torch.qint8)
    kernels: dict[str, Callable[[list[str]], np.ndarray]] = {
        "fp32 torch": fp32.encode, "bf16 autocast (kira default)": bf16.encode, "int8 dynamic (torch)": q8.encode}
    tmp = tempfile.mkdtemp(prefix="kira-onnx-")
    try:
        kernels["onnxruntime fp32"] = onnx_encoder(fp32, tmp, int8=False)
        kernels["onnxruntime int8"] = onnx_encoder(fp32, tmp, int8=True)
    except Exception as e:  # noqa: BLE001 - optional peers; say why they are missing
        print(f"onnx rows skipped: {type(e).__name__}: {str(e)[:120]}")

    rows = {}
    for name, encode in kernels.items():
        encode(texts[:64])
        t0 = time.perf_counter()
        v = encode(texts)
        rows[name] = (v / np.linalg.norm(v, axis=1, keepdims=True), len(texts) / (time.perf_counter() - t0))
    ref = rows["fp32 torch"][0]
    top_ref = np.argsort(-(ref[:args.queries] @ ref.T), 1)[:, :20]
    result = {}
    print(f"{len(texts)} demo passages, {torch.get_num_threads()} threads, load before: {load}")
    print(f"{'kernel':30s} {'psg/s':>7s} {'vs fp32':>7s} {'cos min':>8s} {'cos mean':>8s} {'top-20 same':>11s}")
    for name, (v, rate) in rows.items():
        cos = (v * ref).sum(1)
        top = np.argsort(-(v[:args.queries] @ v.T), 1)[:, :20]
        same = float(np.mean([len(set(a) & set(b)) / 20 for a, b in zip(top, top_ref, strict=True)]))
        result[name] = {"psg_per_s": round(rate, 1), "speedup_vs_fp32": round(rate / rows["fp32 torch"][1], 2),
                        "cos_min": round(float(cos.min()), 4), "cos_mean": round(float(cos.mean()), 5),
                        "top20_agreement": round(same, 3)}
        r = result[name]
        print(f"{name:30s} {rate:7.1f} {r['speedup_vs_fp32']:7.2f} {r['cos_min']:8.4f} {r['cos_mean']:8.5f} {same:11.3f}")
    if out:
        fp = result["fp32 torch"]["psg_per_s"]
        metrics = [benchmarks.metric(f"{name} passages/s", r["psg_per_s"], "fp32 torch, same run", fp)
                   for name, r in result.items() if name != "fp32 torch"]
        metrics += [benchmarks.metric(f"{name} cosine min to fp32", r["cos_min"], goal=">= 0.99")
                    for name, r in result.items() if name != "fp32 torch"]
        benchmarks.write(out, benchmarks.record(__file__, metrics, load=load, details=result))


if __name__ == "__main__":
    main()
