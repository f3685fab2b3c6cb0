"""Extractive reader: span decoding edge cases, aggregation, training, save/load (tiny models)."""

from __future__ import annotations

import torch

from kira.reader.extractive import (
    ExtractiveReader,
    ReaderExample,
    SpanCandidate,
    answer_char_spans,
    best_spans,
    decode_windows,
    extractive_loss,
    token_spans,
)
from kira.reader.train import speed_up_training
from kira.schema import Evidence


def _reader(**kw) -> ExtractiveReader:
    return ExtractiveReader.load("tiny-bert", device="cpu", **kw)


def _logits_pointing_at(windows, w: int, s: int, e: int):
    starts = [torch.zeros(len(ids)) for ids in windows.input_ids]
    ends = [torch.zeros(len(ids)) for ids in windows.input_ids]
    starts[w][s] = 20.0
    ends[w][e] = 20.0
    return starts, ends


def test_answer_straddling_window_boundary_is_found_in_the_overlapping_window():
    reader = _reader(max_length=40, stride=12, max_query_tokens=8)
    gold: list = []
    for n in range(10, 60):  # grow the lead-in until a window boundary cuts through the answer
        filler = " ".join(f"word{i}" for i in range(n))
        passage = f"{filler} the treaty was signed in Zanzibar Town harbour {filler}"
        windows = reader.windows([("where was it signed?", "Treaty", passage)])
        gold = answer_char_spans(passage, ["Zanzibar Town"])
        containing = [w for w in range(len(windows)) if token_spans(windows, w, gold)]
        partial = [w for w in range(len(windows)) if w not in containing and any(
            v and gold[0][0] <= o[0] < gold[0][1] for o, v in zip(windows.offsets[w], windows.valid[w], strict=True))]
        if partial:
            break
    # some window cuts the answer (it holds only part of it), an overlapping one holds it whole
    assert gold == [(passage.index("Zanzibar"), passage.index("Zanzibar") + len("Zanzibar Town"))]
    assert containing and partial and len(windows) > 2
    w = containing[0]
    (s, e), = token_spans(windows, w, gold)
    starts, ends = _logits_pointing_at(windows, w, s, e)
    cands = decode_windows(windows, [passage], starts, ends, max_answer_tokens=10)
    best = max(cands, key=lambda c: c.logprob)
    assert best.text == "Zanzibar Town"
    assert passage[best.start_char:best.end_char] == "Zanzibar Town"


def test_unicode_offsets_map_back_to_exact_characters():
    reader = _reader(max_length=64, stride=16)
    passage = "Der Fluß fließt durch Zürich — später nach 北京市 und São Paulo."
    windows = reader.windows([("wohin?", "Fluß", passage)])
    for answer in ("Zürich", "北京市", "São Paulo"):
        gold = answer_char_spans(passage, [answer])
        (s, e), = token_spans(windows, 0, gold)
        starts, ends = _logits_pointing_at(windows, 0, s, e)
        best = max(decode_windows(windows, [passage], starts, ends), key=lambda c: c.logprob)
        assert (best.text, passage[best.start_char:best.end_char]) == (answer, answer)


def test_spans_never_start_or_end_in_question_title_or_padding():
    reader = _reader(max_length=48, stride=8)
    pairs = [("question words xyzzy here", "Title plugh", "short passage text."),
             ("q", "t", "a much longer passage " * 12)]
    windows = reader.windows(pairs)
    for w in range(len(windows)):
        n = len(windows.input_ids[w])
        invalid = ~torch.tensor(windows.valid[w])
        start = torch.where(invalid, torch.full((n,), 50.0), torch.zeros(n))  # invalid tokens look best
        spans = best_spans(start, start.clone(), torch.tensor(windows.valid[w]), n_best=20)
        assert spans and all(windows.valid[w][s] and windows.valid[w][e] and s <= e for s, e, _ in spans)
    # end to end with a random model: every answer is a substring of a passage at its offsets
    evs = [Evidence(id=f"p{i}", title=t, text=p, score=1.0) for i, (_, t, p) in enumerate(pairs)]
    for ans in reader.read("question words xyzzy here", evs, top_n=5):
        assert "xyzzy" not in ans.text and "plugh" not in ans.text.lower()
        assert ans.evidence[0].text[ans.span[0]:ans.span[1]] == ans.text


def test_empty_passage_is_skipped_not_an_error():
    reader = _reader(max_length=48)
    windows = reader.windows([("q", "Empty", ""), ("q", "Full", "Paris is in France.")])
    assert not any(windows.valid[w] and any(windows.valid[w]) for w in range(len(windows)) if windows.pair[w] == 0)
    ans = reader.read("where is Paris?", [Evidence(id="e", title="Empty", text="", score=2.0),
                                           Evidence(id="f", title="Full", text="Paris is in France.", score=1.0)])
    assert ans and ans[0].evidence[0].id == "f"
    assert reader.read("q", [Evidence(id="e", title="", text="", score=1.0)]) == []
    assert reader.read("q", []) == []


def test_scores_aggregate_across_passages_with_the_same_normalised_string():
    reader = _reader()
    evs = [Evidence(id=str(i), title="", text=t, score=1.0) for i, t in enumerate(["the Paris", "Paris!", "Lyon"])]
    cands = [SpanCandidate(0, 0, 9, "the Paris", torch.tensor(0.3).log().item()),
             SpanCandidate(1, 0, 5, "Paris", torch.tensor(0.3).log().item()),
             SpanCandidate(2, 0, 4, "Lyon", torch.tensor(0.5).log().item())]
    answers = reader._aggregate("q", cands, {0: 1.0, 1: 1.0, 2: 1.0}, [(0, 0), (0, 1), (0, 2)], evs, 2, False)
    assert [a.text for a in answers] == ["the Paris", "Lyon"]
    assert abs(answers[0].score - 0.6) < 1e-6 and {e.id for e in answers[0].evidence} == {"0", "1"}


def test_training_reduces_loss_and_artifact_round_trips(tmp_path):
    torch.manual_seed(0)
    reader = ExtractiveReader.from_base("tiny-bert", device="cpu", max_length=40)
    examples = [ReaderExample(question=f"What is {s} a kind of?",
                              passages=[(s, f"{s}, hypernym: {h}. {s} is a kind of {h}."),
                                        ("Other", "Nothing relevant is written here at all.")],
                              answers=[h], positives=[0])
                for s, h in [("dog", "canine"), ("oak", "tree"), ("rose", "shrub"), ("trout", "fish")]]
    opt = torch.optim.AdamW(reader.model.parameters(), lr=3e-3)
    reader.model.train()
    losses = []
    for _ in range(25):
        loss = extractive_loss(reader, examples)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    reader.model.eval()
    assert losses[-1] < 0.5 * losses[0]
    from kira.reader.calibration import fit_no_answer

    reader.calibration = fit_no_answer([0.9, 0.8, 0.7, 0.2, 0.1, 0.05] * 3, [True, True, False, True, False, False] * 3)
    out = reader.save(tmp_path / "reader")
    again = ExtractiveReader.load(str(out), device="cpu")
    assert again.model.has_relevance and again.max_length == 40
    assert again.calibration is not None and abs(again.threshold - reader.threshold) < 1e-9
    evs = [Evidence(id="a", title="dog", text="dog, hypernym: canine. dog is a kind of canine.", score=1.0)]
    a1, a2 = reader.read("What is dog a kind of?", evs, allow_no_answer=False), again.read(
        "What is dog a kind of?", evs, allow_no_answer=False)
    assert a1[0].text == a2[0].text and abs(a1[0].score - a2[0].score) < 1e-5
    assert a1[0].text == "canine"
    # a threshold above every score makes the reader abstain, keeping the guess second
    again.no_answer_threshold = 2.0
    na = again.read("What is dog a kind of?", evs, top_n=2)
    assert na[0].no_answer and na[0].text == "" and na[1].text == "canine"


def test_echo_factor_down_weighs_spans_the_question_already_names():
    from kira.reader.extractive import ECHO_PENALTY, echo_factor

    assert echo_factor("What is a dog a kind of?", "dog") == ECHO_PENALTY
    assert echo_factor("Which body part contains the retina?", "Retina") == ECHO_PENALTY
    assert echo_factor("Who wrote the Iliad?", "the Iliad") == ECHO_PENALTY
    assert echo_factor("What is a dog a kind of?", "domestic animal") == 1.0
    assert echo_factor("What do you call a baby cat?", "kitten") == 1.0
    assert echo_factor("Is a whale a fish or a mammal?", "mammal") == 1.0  # a choice: the answer is named
    assert echo_factor("What is a dog?", "a") == 1.0  # nothing left to compare
    # the noun of a wh-phrase is the answer's type, not an echo
    assert echo_factor("Which river is Baghdad on?", "Tigris River") == 1.0
    assert echo_factor("Which river is Baghdad on?", "Baghdad") == ECHO_PENALTY
    assert echo_factor("What kind of bird is an eagle?", "bird of prey") == 1.0


def test_type_agreement_prefers_one_year_over_a_life_span():
    from kira.reader.extractive import type_agreement

    assert type_agreement("What year did Shakespeare die?", "1616") == 1.0
    assert type_agreement("What year did Shakespeare die?", "1564-1616") < 1.0
    assert type_agreement("When was Edison born?", "(1847-1931)") < 1.0
    assert type_agreement("How many legs does a spider have?", "eight") == 1.0
    assert type_agreement("How many legs does a spider have?", "arachnid") < 1.0


def test_kb_answer_types_move_mass_between_candidates_and_keep_the_total(monkeypatch):
    from kira.kb import answer_types
    from kira.kb.answer_types import AnswerTypes

    monkeypatch.setattr(answer_types, "TYPE_AGREE", 2.0)
    monkeypatch.setattr(answer_types, "TYPE_MISMATCH", 0.5)
    reader = _reader()
    reader.answer_types = AnswerTypes.from_triples(
        [("c", "city", []), ("a", "Agra", []), ("m", "mausoleum", []), ("b", "building", [])],
        [("a", "c"), ("m", "b")])
    evs = [Evidence(id=str(i), title="", text=t, score=1.0) for i, t in enumerate(["mausoleum", "Agra"])]
    cands = [SpanCandidate(0, 0, 9, "mausoleum", torch.tensor(0.6).log().item()),
             SpanCandidate(1, 0, 4, "Agra", torch.tensor(0.3).log().item())]
    q = "In which city is the Taj Mahal?"
    answers = reader._aggregate(q, cands, {0: 1.0, 1: 1.0}, [(0, 0), (0, 1)], evs, 2, False)
    assert [a.text for a in answers] == ["Agra", "mausoleum"]
    assert abs(sum(a.score for a in answers) - 0.9) < 1e-6
    reader.answer_types = None
    assert reader._aggregate(q, cands, {0: 1.0, 1: 1.0}, [(0, 0), (0, 1)], evs, 2, False)[0].text == "mausoleum"


def test_a_span_the_kb_does_not_know_is_trimmed_to_its_part_of_the_asked_type():
    from kira.kb.answer_types import AnswerTypes

    reader = _reader()
    reader.answer_types = AnswerTypes.from_triples(
        [("k", "country", []), ("x", "Mexico", []), ("p", "port", []), ("a", "Acapulco", []),
         ("s", "soybean milk", []), ("l", "liquid", []), ("mi", "milk", [])],
        [("x", "k"), ("a", "p"), ("mi", "l")])
    text = "a port and resort city on the Pacific coast of southern Mexico"
    at = text.index("Pacific")
    evs = [Evidence(id="0", title="Acapulco", text=text, score=1.0)]
    cands = [SpanCandidate(0, at, len(text), text[at:], 0.0)]
    [a] = reader._aggregate("In which country is Acapulco?", cands, {0: 1.0}, [(0, 0)], evs, 1, False)
    assert a.text == "Mexico" and text[a.span[0]:a.span[1]] == "Mexico"
    # a name the KB knows stays whole, and the class itself is never the answer
    assert reader.answer_types.agreeing_part("What liquid is tofu made from?", "soybean milk") is None
    assert reader.answer_types.agreeing_part("Which country is it?", "a country in America") is None


def test_type_agreement_keeps_bare_numbers_from_non_numeric_wh_nouns_and_spans_off_sentence_breaks():
    from kira.reader.extractive import CROSSES_SENTENCE, NON_NUMERIC_NUMBER, type_agreement

    assert type_agreement("In which country was Chopin born?", "1810-1849") == NON_NUMERIC_NUMBER
    assert type_agreement("In which country was Chopin born?", "Poland") == 1.0
    assert type_agreement("In which year was Chopin born?", "1810") == 1.0  # the noun takes numbers
    assert type_agreement("What is the boiling point of water?", "100") == 1.0  # no wh-noun
    assert type_agreement("Where is the Taj Mahal?", "Agra. The Taj Mahal") == CROSSES_SENTENCE
    assert type_agreement("Where is the Taj Mahal?", "St. Louis") == 1.0  # an abbreviation, no break


def test_years_of_a_life_span_answer_birth_and_death_questions_not_others():
    from kira.reader.extractive import LIFE_SPAN_YEAR, context_agreement

    text = "Norwegian explorer who was the first to reach the South Pole in 1911 (1872-1928)"
    at = text.index("1928")
    assert context_agreement("In what year did Amundsen reach the South Pole?", text, at, at + 4) == LIFE_SPAN_YEAR
    assert context_agreement("When did Amundsen die?", text, at, at + 4) == 1.0
    first = text.index("1911")
    assert context_agreement("In what year did Amundsen reach the South Pole?", text, first, first + 4) == 1.0
    assert context_agreement("Who reached the South Pole?", text, 0, 9) == 1.0  # not a number
    assert context_agreement("In what year?", text, -1, 4) == 1.0  # a span in the title


def test_training_speed_up_sets_dropout_and_eager_attention_then_restores_inference_exactly():
    reader = ExtractiveReader.from_base("tiny-bert", device="cpu", max_length=40)
    qa = reader.model.qa
    qa.set_attn_implementation("sdpa")
    windows = reader.windows([reader.pair("Who wrote Hamlet?", "Hamlet", "Hamlet is a play by Shakespeare.")[0]])
    before = reader.forward_windows(windows, [0])
    attn = [m for n, m in qa.named_modules() if n.endswith("attention.self.dropout")]
    assert attn and all(m.p > 0 for m in attn)
    restore = speed_up_training(qa, attention_dropout=0.0, hidden_dropout=0.05, device=torch.device("cpu"))
    assert qa.config._attn_implementation == "eager"
    assert all(m.p == 0.0 for m in attn)
    others = [m for m in qa.modules() if isinstance(m, torch.nn.Dropout) and m not in attn]
    assert others and all(m.p == 0.05 for m in others)
    restore()
    assert qa.config._attn_implementation == "sdpa"
    assert all(m.p == qa.config.attention_probs_dropout_prob for m in attn)
    after = reader.forward_windows(windows, [0])
    for a, b in zip(before, after, strict=True):
        assert torch.equal(a, b)
