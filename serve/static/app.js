// kira web page: ask a question, show the answer, its evidence (answer span highlighted) and the
// index version. All text goes into the DOM with textContent, never innerHTML.
"use strict";

const $ = (id) => document.getElementById(id);

function headers() {
  const h = { "Content-Type": "application/json" };
  const key = $("api-key").value || localStorage.getItem("kira-api-key") || "";
  if (key) { h["X-API-Key"] = key; localStorage.setItem("kira-api-key", key); }
  return h;
}

async function loadVersion() {
  try {
    const r = await fetch("/readyz");
    const body = await r.json();
    $("version").textContent = body.index_version || "not ready";
  } catch (e) {
    $("version").textContent = "unreachable";
  }
}

// Text with [start, end) highlighted as <mark>.
function highlighted(text, span) {
  const frag = document.createDocumentFragment();
  if (!span || span.length !== 2 || span[0] < 0 || span[1] > text.length || span[0] >= span[1]) {
    frag.appendChild(document.createTextNode(text));
    return frag;
  }
  frag.appendChild(document.createTextNode(text.slice(0, span[0])));
  const m = document.createElement("mark");
  m.textContent = text.slice(span[0], span[1]);
  frag.appendChild(m);
  frag.appendChild(document.createTextNode(text.slice(span[1])));
  return frag;
}

// Highlight the answer string in text when the reader gave no offsets (e.g. generated answers).
function findSpan(text, answer) {
  if (!answer) return null;
  const i = text.toLowerCase().indexOf(answer.toLowerCase());
  return i >= 0 ? [i, i + answer.length] : null;
}

function evidenceItem(ev, res) {
  const li = document.createElement("li");
  li.className = "evidence";
  li.dataset.id = ev.id;
  const head = document.createElement("div");
  head.className = "ev-head";
  const kind = document.createElement("span");
  kind.className = "ev-kind";
  kind.textContent = ev.kind;
  head.appendChild(kind);
  const src = ev.source ? ` · source ${ev.source}` : "";
  // the retriever's own score (BM25, cosine), not the fused rank score
  const own = ev.metadata && typeof ev.metadata.retriever_score === "number" ? ev.metadata.retriever_score : ev.score;
  const score = typeof own === "number" ? ` · ${own.toFixed(3)}` : "";
  head.appendChild(document.createTextNode(`${ev.title || ev.id}${src} · ${ev.retriever || "?"}${score}`));
  li.appendChild(head);
  const body = document.createElement("div");
  body.className = "ev-text";
  const isAnswerEv = res.answer_evidence_id ? ev.id === res.answer_evidence_id : false;
  const span = isAnswerEv ? (res.span || findSpan(ev.text, res.answer)) : null;
  body.appendChild(highlighted(ev.text || "", span));
  if (isAnswerEv) li.classList.add("answer-evidence");
  li.appendChild(body);
  if (ev.kind === "kb_fact" && ev.metadata && Array.isArray(ev.metadata.triples)) {
    const t = document.createElement("div");
    t.className = "muted";
    t.textContent = ev.metadata.triples.map((x) => x.join(" → ")).join("; ");
    li.appendChild(t);
  }
  if (isAnswerEv && Array.isArray(res.cells) && res.cells.length) {
    const c = document.createElement("div");
    c.className = "cells";
    c.textContent = "cells: " + res.cells.map((rc) => `(row ${rc[0]}, col ${rc[1]})`).join(", ") +
      (res.aggregation ? ` · ${res.aggregation}` : "");
    li.appendChild(c);
  }
  return li;
}

function show(res) {
  $("result").hidden = false;
  $("answer").textContent = res.no_answer || res.answer === null ? "(no answer)" : res.answer;
  $("score").textContent = typeof res.probability === "number"
    ? `P(correct) ${res.probability.toFixed(2)}`
    : (typeof res.score === "number" ? `score ${res.score.toFixed(3)}` : "");
  $("version").textContent = res.index_version;
  const t = Object.entries(res.timings || {}).map(([k, v]) => `${k} ${(v * 1000).toFixed(1)} ms`);
  $("timings").textContent = t.join(" · ") + ` · reader ${res.reader || "?"}`;
  const list = $("evidence");
  list.replaceChildren(...(res.evidence || []).map((ev) => evidenceItem(ev, res)));
}

async function ask(question) {
  $("error").hidden = true;
  $("status").textContent = "asking…";
  const body = {
    question,
    k: parseInt($("k").value, 10) || 10,
    sources: $("sources").value,
    reader: $("reader").value,
  };
  try {
    const r = await fetch("/v1/ask", { method: "POST", headers: headers(), body: JSON.stringify(body) });
    const data = await r.json();
    if (!r.ok) {
      const d = data.message || (typeof data.detail === "string" ? data.detail : JSON.stringify(data.detail));
      throw new Error(`${r.status}: ${d}`);
    }
    show(data);
    $("status").textContent = "done";
  } catch (e) {
    $("error").textContent = String(e.message || e);
    $("error").hidden = false;
    $("status").textContent = "error";
  }
}

$("ask-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const q = $("question").value.trim();
  if (q) ask(q);
});

loadVersion();
// ?q=… asks at once (shareable links; also how the headless browser test drives the page)
const q = new URLSearchParams(location.search).get("q");
if (q) { $("question").value = q; ask(q); }
