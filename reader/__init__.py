"""kira.reader: turning retrieved evidence into answers.

* ``extractive`` — DPR-style reader: passage relevance (softmax over the k passages) x span
  probability, stride windows, exact character offsets; any extractive-QA checkpoint or kira's own.
* ``fid`` — Fusion-in-Decoder over T5 / BART / BERT2BERT: passages encoded independently (in
  chunks), concatenated, one decoder reads them all; own greedy/beam search.
* ``train`` — distant supervision from kira's retriever, or given contexts; calibrated no-answer.
* ``questions`` — synthetic QA from KB triples (templates) and text (cloze), held out by subject.
* ``generate`` — unsupervised QA from ANY text: description -> name, typed span questions (dates,
  numbers, entities, KB relations, code facts), hard negatives, held out by passage and answer.
* ``pretrain`` — the extractive reader pretrained once per user on WordNet-generated questions,
  cached under ``~/.cache/kira/readers/<base>-<generator version>-<recipe>``.
* ``evaluate`` — SQuAD EM/F1 with retrieval top-k and answer-free baselines.
* ``defaults`` — the workspace's default readers (trained once, cached under ``models/``).
* ``knowledge`` / ``knowledge_reader`` / ``knowledge_train`` — KB knowledge injected into the
  extractive reader: linked mentions, ERNIE fusion or a KnowBERT KAR layer behind zero gates, one
  K-Adapter per KB (``models/<kb>-adapter``, ``kira kb add --adapter``), an entity-answer head, WKLM.
"""
