// LearnFlow web UI: a small single-page app over the JSON API (same origin, session
// cookie). No build step; vendored libraries: marked (Markdown), DOMPurify (sanitising
// everything rendered as HTML), Mermaid (diagrams).
"use strict";

// Errors are collected for the browser tests (and shown in the console).
window.__lf_errors = [];
window.addEventListener("error", (e) => window.__lf_errors.push(String(e.message || e)));
window.addEventListener("unhandledrejection", (e) => window.__lf_errors.push(String(e.reason && e.reason.message || e.reason)));

const AGENTS = ["summary", "notes", "outline", "key-concepts", "glossary", "flashcards", "quiz", "cloze",
  "diagram", "timeline", "examples", "mnemonics", "faq", "study-plan", "prerequisites"];
const PURPOSES = ["exam-prep", "quick-review", "deep-understanding", "lecture-notes"];
const STATUSES = ["queued", "running", "sleeping", "waiting", "completed", "failed", "cancelled"];

let me = null;
let cleanup = [];

// ---- helpers -------------------------------------------------------------------

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function safeHtml(markdown) {
  const html = window.marked ? window.marked.parse(String(markdown || "")) : String(markdown || "");
  const div = h("div", { class: "md" });
  div.innerHTML = window.DOMPurify.sanitize(html);
  return div;
}

class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function api(method, path, body, isForm) {
  const opts = { method, headers: { "x-learnflow-csrf": "1" }, credentials: "same-origin" };
  if (body !== undefined) {
    if (isForm) opts.body = body;
    else { opts.body = JSON.stringify(body); opts.headers["content-type"] = "application/json"; }
  }
  const r = await fetch(path, opts);
  const text = await r.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (_) { data = text; }
  if (!r.ok) {
    const msg = data && data.error ? data.error.message : `${r.status} ${r.statusText}`;
    if (r.status === 401 && path !== "/ui/login") { me = null; location.hash = "#/login"; }
    throw new ApiError(r.status, msg);
  }
  return data;
}

function errorBox(e) { return h("div", { class: "error", role: "alert" }, e.message || String(e)); }
function badge(s) { return h("span", { class: `badge ${s}` }, s); }
function when(ms) { return ms ? new Date(ms).toLocaleString() : ""; }
function dur(us) { return us >= 1e6 ? `${(us / 1e6).toFixed(2)} s` : us >= 1e3 ? `${(us / 1e3).toFixed(1)} ms` : `${us} µs`; }
function json(v) { return h("pre", {}, JSON.stringify(v, null, 2)); }
function put(el, ...nodes) { el.replaceChildren(...nodes.flat(Infinity).filter((n) => n !== null && n !== undefined && n !== false)); return el; }
function setMain(...nodes) { return put(document.getElementById("app"), ...nodes); }
function onLeave(fn) { cleanup.push(fn); }

// ---- routing ---------------------------------------------------------------------

async function route() {
  for (const fn of cleanup.splice(0)) { try { fn(); } catch (_) { /* already closed */ } }
  const hash = location.hash || "#/";
  const parts = hash.slice(2).split("/");
  if (!me && parts[0] !== "login") {
    try { me = await api("GET", "/api/me"); } catch (_) { location.hash = "#/login"; return; }
  }
  document.getElementById("nav").hidden = !me;
  document.getElementById("who").textContent = me ? `${me.name}${me.admin ? " (admin)" : ""}` : "";
  try {
    if (parts[0] === "login") return loginView();
    if (parts[0] === "doc" && parts[1]) return await documentView(parts[1]);
    if (parts[0] === "runs") return await runsView();
    if (parts[0] === "run" && parts[1]) return await runView(parts[1]);
    if (parts[0] === "functions") return await functionsView();
    return await documentsView();
  } catch (e) {
    setMain(errorBox(e));
  }
}

window.addEventListener("hashchange", route);
window.addEventListener("DOMContentLoaded", () => {
  if (window.mermaid) window.mermaid.initialize({ startOnLoad: false, securityLevel: "strict", htmlLabels: false, flowchart: { htmlLabels: false } });
  document.getElementById("logout").addEventListener("click", async () => {
    await api("POST", "/ui/logout");
    me = null;
    location.hash = "#/login";
  });
  route();
});

// ---- sign in -----------------------------------------------------------------------

function loginView() {
  const msg = h("div");
  const input = h("input", { id: "token", type: "password", placeholder: "lf_…", autocomplete: "off", size: 60 });
  const form = h("form", { class: "card", id: "login-form", onsubmit: async (ev) => {
    ev.preventDefault();
    put(msg, );
    if (!input.value.trim()) { msg.append(errorBox(new Error("Paste your API token first."))); return; }
    try {
      me = await api("POST", "/ui/login", { token: input.value.trim() });
      location.hash = "#/";
    } catch (e) { msg.append(errorBox(e)); }
  } },
  h("h1", {}, "Sign in"),
  h("p", { class: "muted" }, "Use the token `learnflow serve` printed on its first start, or one from `learnflow users create`."),
  h("div", { class: "row" }, h("label", {}, "API token", input), h("button", { type: "submit" }, "Sign in")),
  msg);
  setMain(form);
  input.focus();
}

// ---- documents ---------------------------------------------------------------------

async function documentsView() {
  const msg = h("div", { id: "upload-message" });
  const file = h("input", { type: "file", id: "file" });
  const purpose = h("select", { id: "purpose" }, PURPOSES.map((p) => h("option", { value: p }, p)), h("option", { value: "custom" }, "custom…"));
  const custom = h("input", { id: "custom-purpose", placeholder: "your purpose", hidden: true });
  purpose.addEventListener("change", () => { custom.hidden = purpose.value !== "custom"; });
  const review = h("input", { type: "checkbox", id: "review" });
  const button = h("button", { type: "submit", id: "upload" }, "Upload");
  const form = h("form", { class: "card", id: "upload-form", onsubmit: async (ev) => {
    ev.preventDefault();
    put(msg, );
    const f = file.files[0];
    if (!f) { msg.append(errorBox(new Error("Choose a file to upload first."))); return; }
    if (me && f.size > me.maxUploadBytes) {
      msg.append(errorBox(new Error(`That file is ${(f.size / 1048576).toFixed(1)} MB; the limit is ${Math.floor(me.maxUploadBytes / 1048576)} MB.`)));
      return;
    }
    const p = purpose.value === "custom" ? custom.value.trim() : purpose.value;
    if (!p) { msg.append(errorBox(new Error("Say what the study pack is for."))); return; }
    const data = new FormData();
    data.append("file", f, f.name);
    data.append("purpose", p);
    data.append("review", review.checked ? "true" : "false");
    button.disabled = true;
    try {
      const r = await api("POST", "/api/documents", data, true);
      location.hash = `#/doc/${r.documentId}`;
    } catch (e) { msg.append(errorBox(e)); } finally { button.disabled = false; }
  } },
  h("h1", {}, "Upload a document"),
  h("p", { class: "muted" }, "PDF (text or scanned), Word, HTML, Markdown, text, or a photo of a page."),
  h("div", { class: "row" },
    h("label", {}, "File", file),
    h("label", {}, "Purpose", purpose),
    custom,
    h("label", {}, h("span", {}, review, " review the plan first")),
    button),
  msg);
  const list = h("div", { id: "documents" }, h("p", { class: "muted" }, "Loading…"));
  setMain(form, h("h2", {}, "Your documents"), list);
  const refresh = async () => {
    const r = await api("GET", "/api/documents");
    if (!r.documents.length) { put(list, h("p", { class: "muted" }, "No documents yet.")); return; }
    put(list, h("table", {},
      h("tr", {}, h("th", {}, "Document"), h("th", {}, "Purpose"), h("th", {}, "Status"), h("th", {}, "Pages"), h("th", {}, "Uploaded")),
      r.documents.map((d) => h("tr", {},
        h("td", {}, h("a", { href: `#/doc/${d.id}` }, d.title || d.fileName)),
        h("td", {}, d.purpose), h("td", {}, badge(d.status)), h("td", {}, d.pages ?? ""), h("td", {}, when(d.createdAt))))));
  };
  await refresh();
  const timer = setInterval(() => refresh().catch(() => {}), 3000);
  onLeave(() => clearInterval(timer));
}

async function documentView(id) {
  const doc = await api("GET", `/api/documents/${id}`);
  const status = h("span", { id: "doc-status" }, badge(doc.status));
  const steps = h("ul", { class: "steps", id: "steps" });
  const reviewBox = h("div", { id: "review" });
  const pack = h("div", { id: "pack", class: "materials" });
  const askBox = h("div", { id: "ask" });
  setMain(
    h("h1", {}, doc.title || doc.fileName, " ", status),
    h("p", { class: "muted" }, `${doc.purpose} · ${doc.pages ?? "?"} pages · `, doc.runId ? h("a", { href: `#/run/${doc.runId}` }, "run details") : ""),
    doc.error ? h("div", { class: "error" }, doc.error) : null,
    h("div", { class: "card" }, h("h2", {}, "Progress"), steps),
    reviewBox, pack, askBox);

  const rows = new Map();
  const source = new EventSource(`/api/documents/${id}/events`);
  onLeave(() => source.close());
  const stepEvent = (kind) => (ev) => {
    const d = JSON.parse(ev.data);
    let li = rows.get(d.stepId);
    if (!li) { li = h("li", { "data-step": d.stepId }); rows.set(d.stepId, li); steps.append(li); }
    const text = kind === "retrying" ? `${d.stepId} (retrying: ${d.error && d.error.message})` : kind === "failed" ? `${d.stepId}: ${d.error && d.error.message}` : d.stepId;
    li.className = kind;
    li.textContent = text;
  };
  source.addEventListener("step.started", stepEvent("started"));
  source.addEventListener("step.completed", stepEvent("completed"));
  source.addEventListener("step.retrying", stepEvent("retrying"));
  source.addEventListener("step.failed", stepEvent("failed"));
  source.addEventListener("run.waiting", () => { refreshDoc(); });
  for (const end of ["completed", "failed", "cancelled"]) {
    source.addEventListener(end, () => { source.close(); refreshDoc(); });
  }
  source.onerror = () => { /* the browser reconnects with Last-Event-ID */ };

  async function refreshDoc() {
    const d = await api("GET", `/api/documents/${id}`);
    put(status, badge(d.status));
    if (d.status === "review") await showReview(d); else put(reviewBox, );
    renderPack(d, pack);
    if (d.status === "ready") renderAsk(d, askBox);
  }
  async function showReview(d) {
    if (!d.runId) return;
    const run = await api("GET", `/api/runs/${d.runId}`);
    const architect = run.steps.find((s) => s.step_id === "architect");
    const planned = architect && architect.output ? architect.output.plan.agents : [];
    const names = new Set(planned.map((a) => a.name));
    const msg = h("div");
    const boxes = AGENTS.map((a) => h("input", { type: "checkbox", value: a, checked: names.has(a), name: "agent" }));
    put(reviewBox, h("div", { class: "card" },
      h("h2", {}, "Review the plan"),
      h("p", { class: "muted" }, architect && architect.output ? architect.output.plan.rationale : ""),
      h("ol", {}, planned.map((a) => h("li", {}, h("b", {}, a.name), ` — ${a.focus || a.reason || ""}`))),
      h("div", { class: "agents-pick" }, boxes.map((b) => h("label", {}, b, " ", b.value))),
      h("button", { id: "approve", onclick: async () => {
        put(msg, );
        const agents = boxes.filter((b) => b.checked).map((b) => b.value);
        if (!agents.length) { msg.append(errorBox(new Error("Pick at least one agent."))); return; }
        try {
          await api("POST", `/api/documents/${id}/approve`, { agents });
          put(reviewBox, h("p", { class: "notice" }, "Approved; the agents are at work."));
        } catch (e) { msg.append(errorBox(e)); }
      } }, "Approve"), msg));
  }
  await refreshDoc();
}

// ---- the study pack ------------------------------------------------------------------

function cite(c) { return c && c.page ? h("span", { class: "muted" }, ` [p. ${c.page}]`) : ""; }

function renderPack(doc, box) {
  const ready = (doc.materials || []).filter((m) => m.status === "ready");
  const failed = (doc.materials || []).filter((m) => m.status === "failed");
  if (!ready.length && !failed.length) { put(box, ); return; }
  const sections = ready.sort((a, b) => a.priority - b.priority).map((m) => {
    const s = h("section", { id: `material-${m.agent}` }, h("h2", {}, title(m.agent)));
    try { s.append(renderMaterial(m.agent, m.content || {})); } catch (e) { s.append(errorBox(e)); }
    return s;
  });
  const links = doc.status === "ready" ? h("p", {},
    h("a", { href: `/api/documents/${doc.id}/pack.md` }, "Download the pack (Markdown)"), " · ",
    h("a", { href: `/api/documents/${doc.id}/flashcards.tsv`, id: "anki" }, "Anki export")) : null;
  put(box, links, ...sections,
    failed.map((m) => h("section", {}, h("h2", {}, title(m.agent)), h("div", { class: "error" }, `This material failed: ${m.error}`))));
  box.querySelectorAll(".mermaid-box").forEach(renderMermaid);
}

function title(agent) { return agent.split("-").map((w) => w[0].toUpperCase() + w.slice(1)).join(" "); }

let mermaidSeq = 0;
async function renderMermaid(el) {
  const code = el.dataset.code;
  try {
    const { svg } = await window.mermaid.render(`mmd-${++mermaidSeq}`, code);
    el.innerHTML = window.DOMPurify.sanitize(svg, { USE_PROFILES: { svg: true, svgFilters: true, html: true } });
  } catch (e) {
    put(el, h("div", { class: "error" }, `The diagram could not be drawn: ${e.message || e}`), h("pre", {}, code));
  }
}

function renderMaterial(agent, c) {
  switch (agent) {
    case "summary": return h("div", {},
      c.abstract ? h("p", {}, h("b", {}, c.abstract)) : null,
      h("p", {}, (c.sentences || []).map((x) => h("span", {}, x.text, cite(x.source), " "))),
      list(c.key_points, (p) => h("span", {}, p.point, cite(p.source))));
    case "notes": return h("div", {}, (c.sections || []).map((sec) => h("div", {},
      h("h3", {}, sec.heading, sec.page ? h("span", { class: "muted" }, ` (p. ${sec.page})`) : ""),
      list(sec.bullets, (b) => h("span", {}, safeInline(b.text), cite(b.source))),
      sec.key_terms && sec.key_terms.length ? h("p", { class: "muted" }, "Key terms: ", sec.key_terms.join(", ")) : null)));
    case "quiz": return quiz(c.questions || []);
    case "flashcards": return flashcards(c.cards || []);
    case "cloze": return h("ol", {}, (c.items || []).map((i) => h("li", {}, i.text, " ",
      h("details", {}, h("summary", {}, "answer"), i.answer, i.hint ? h("span", { class: "muted" }, ` (hint: ${i.hint})`) : ""), cite(i.source))));
    case "diagram": return h("div", {}, h("p", { class: "muted" }, c.title || ""), h("div", { class: "mermaid-box", "data-code": c.mermaid || "" }));
    case "glossary": return h("dl", {}, (c.entries || []).map((t) => [h("dt", {}, h("b", {}, t.term), t.also_called ? ` (${t.also_called})` : "", cite(t.source)), h("dd", {}, t.definition)]));
    case "timeline": return h("ul", {}, (c.events || []).map((e) => h("li", {}, h("b", {}, e.date), " — ", e.event, cite(e.source))));
    case "faq": return h("div", {}, (c.items || []).map((q) => h("details", {}, h("summary", {}, q.question), h("p", {}, q.answer, cite(q.source)))));
    default: return generic(c);
  }
}

function safeInline(text) {
  const span = h("span");
  span.innerHTML = window.DOMPurify.sanitize(window.marked ? window.marked.parseInline(String(text || "")) : String(text || ""));
  return span;
}

function list(items, f) { return items && items.length ? h("ul", {}, items.map((i) => h("li", {}, f(i)))) : null; }

function generic(v) {
  if (v === null || v === undefined) return "";
  if (typeof v === "string") return v.includes("\n") || v.includes("#") ? safeHtml(v) : h("p", {}, v);
  if (typeof v !== "object") return h("span", {}, String(v));
  if (Array.isArray(v)) return h("ul", {}, v.map((x) => h("li", {}, generic(x))));
  if (v.page && Object.keys(v).every((k) => ["chunk", "page"].includes(k))) return cite(v);
  return h("div", {}, Object.entries(v).map(([k, x]) => h("div", {}, h("b", {}, k.replace(/_/g, " ")), ": ", generic(x))));
}

function quiz(questions) {
  return h("div", { class: "quiz" }, questions.map((q, qi) => {
    const explain = h("div", { class: "explain", hidden: true });
    const answer = q.correct_index ?? 0;
    const buttons = (q.options || q.choices || []).map((o, i) => h("button", { type: "button", "data-index": i, onclick: () => {
      buttons.forEach((b, j) => { b.disabled = true; if (j === answer) b.classList.add("right"); });
      if (i !== answer) buttons[i].classList.add("wrong");
      explain.hidden = false;
      put(explain, i === answer ? "✓ Right. " : "✗ Not quite. ", q.explanation || "", cite(q.source));
    } }, o));
    return h("div", { class: "quiz-q", "data-question": qi }, h("div", {}, h("b", {}, `${qi + 1}. `), q.question), h("div", { class: "options" }, buttons), explain);
  }));
}

function flashcards(cards) {
  return h("div", { class: "cards" }, cards.map((c) => {
    const el = h("div", { class: "flashcard", tabindex: 0, title: "Click to flip" }, c.front);
    el.addEventListener("click", () => {
      const flipped = el.classList.toggle("flipped");
      put(el, flipped ? h("span", {}, c.back, cite(c.source)) : c.front);
    });
    return el;
  }));
}

function renderAsk(doc, box) {
  if (box.dataset.ready) return;
  box.dataset.ready = "1";
  const q = h("input", { id: "question", placeholder: "Ask about this document…", size: 60 });
  const out = h("div", { id: "answers" });
  let thread = null;
  put(box, h("div", { class: "card" }, h("h2", {}, "Ask a question"),
    h("form", { class: "row", id: "ask-form", onsubmit: async (ev) => {
      ev.preventDefault();
      if (!q.value.trim()) { out.prepend(errorBox(new Error("Type a question first."))); return; }
      try {
        const a = await api("POST", `/api/documents/${doc.id}/ask`, thread ? { question: q.value, threadId: thread } : { question: q.value });
        thread = a.thread_id;
        const text = h("div", { class: "answer" });
        for (const part of a.answer.split(/(\[p\. \d+\])/)) {
          const m = part.match(/^\[p\. (\d+)\]$/);
          text.append(m ? h("a", { href: `#/doc/${doc.id}`, class: "cite", "data-page": m[1], onclick: (e) => { e.preventDefault(); const t = document.getElementById(`src-${a.ts || ""}${m[1]}`); if (t) t.scrollIntoView(); } }, part) : part);
        }
        const sources = h("ol", { class: "sources" }, (a.passages || []).map((p) => h("li", { id: `src-${p.chunk.page}` }, h("b", {}, `p. ${p.chunk.page}: `), p.chunk.text.slice(0, 300), p.chunk.text.length > 300 ? "…" : "")));
        out.prepend(h("div", {}, h("p", {}, h("b", {}, q.value)), text, h("details", {}, h("summary", {}, "Passages used"), sources)));
        q.value = "";
      } catch (e) { out.prepend(errorBox(e)); }
    } }, q, h("button", { type: "submit" }, "Ask")), out));
}

// ---- runs dashboard --------------------------------------------------------------------

async function runsView() {
  const params = new URLSearchParams(location.hash.split("?")[1] || "");
  const fns = await api("GET", "/api/functions");
  const fn = h("select", { id: "f-function" }, h("option", { value: "" }, "all functions"), fns.functions.map((f) => h("option", { value: f.id, selected: params.get("function") === f.id }, f.id)));
  const st = h("select", { id: "f-status" }, h("option", { value: "" }, "any status"), STATUSES.map((s) => h("option", { value: s, selected: params.get("status") === s }, s)));
  const since = h("input", { type: "datetime-local", id: "f-since" });
  const until = h("input", { type: "datetime-local", id: "f-until" });
  const user = me && me.admin ? h("input", { id: "f-user", placeholder: "user id", value: params.get("user") || "" }) : null;
  const search = h("input", { id: "f-search", placeholder: "event id or document id", value: params.get("q") || "" });
  const table = h("div", { id: "runs" });
  const counts = h("div", { class: "counts", id: "counts" });
  const more = h("button", { class: "secondary", id: "more", hidden: true }, "More");
  let cursor = null;
  const query = () => {
    const q = new URLSearchParams();
    if (fn.value) q.set("function", fn.value);
    if (st.value) q.set("status", st.value);
    if (since.value) q.set("since", String(new Date(since.value).getTime()));
    if (until.value) q.set("until", String(new Date(until.value).getTime()));
    if (user && user.value.trim()) q.set("user", user.value.trim());
    const s = search.value.trim();
    if (s) q.set("event", s.startsWith("doc_") ? `upload-${s}` : s);
    q.set("limit", "50");
    return q;
  };
  const load = async (append) => {
    const q = query();
    if (append && cursor) q.set("cursor", cursor);
    const r = await api("GET", `/api/runs?${q}`);
    cursor = r.nextCursor;
    more.hidden = !cursor;
    put(counts, ...STATUSES.filter((s) => r.counts[s]).map((s) => h("span", {}, badge(s), " ", r.counts[s])));
    const rows = r.runs.map((run) => h("tr", { "data-run": run.id },
      h("td", {}, h("a", { href: `#/run/${run.id}` }, run.id)), h("td", {}, run.function_id), h("td", {}, badge(run.status)),
      h("td", {}, run.event_id), h("td", {}, when(Date.parse(run.created_at) || run.created_at)),
      h("td", {}, run.owner || "")));
    if (append) table.querySelector("table").append(...rows);
    else put(table, r.runs.length ? h("table", {}, h("tr", {}, ["Run", "Function", "Status", "Event", "Created", "User"].map((t) => h("th", {}, t))), rows) : h("p", { class: "muted" }, "No runs match."));
  };
  const msg = h("div");
  const filters = h("form", { class: "card row", id: "run-filters", onsubmit: (e) => { e.preventDefault(); load(false).catch((x) => put(msg, errorBox(x))); } },
    h("label", {}, "Function", fn), h("label", {}, "Status", st), h("label", {}, "Since", since), h("label", {}, "Until", until), user ? h("label", {}, "User", user) : null,
    h("label", {}, "Search", search), h("button", { type: "submit" }, "Filter"), msg);
  more.addEventListener("click", () => load(true));
  setMain(h("h1", {}, "Runs"), filters, counts, table, more, sendEventCard());
  await load(false);
}

function sendEventCard() {
  const name = h("input", { id: "event-name", placeholder: "event name, e.g. app/test" });
  const data = h("textarea", { id: "event-data" }, "{}");
  const msg = h("div", { id: "event-message" });
  return h("form", { class: "card", id: "send-event", onsubmit: async (e) => {
    e.preventDefault();
    put(msg, );
    let parsed;
    try { parsed = JSON.parse(data.value || "{}"); } catch (x) { msg.append(errorBox(new Error(`The data is not valid JSON: ${x.message}`))); return; }
    if (!name.value.trim()) { msg.append(errorBox(new Error("Give the event a name."))); return; }
    try {
      const r = await api("POST", "/api/events", { name: name.value.trim(), data: parsed });
      const ev = r.events[0];
      msg.append(h("p", { class: "notice" }, `Sent ${ev.id}; runs started: ${ev.runs.length ? "" : "none"}`, ev.runs.map((id) => h("a", { href: `#/run/${id}` }, `${id} `))));
    } catch (x) { msg.append(errorBox(x)); }
  } }, h("h2", {}, "Send a test event"), h("div", { class: "row" }, h("label", {}, "Name", name)), h("label", {}, "Data (JSON)", data), h("button", { type: "submit" }, "Send"), msg);
}

async function runView(id) {
  const box = h("div");
  setMain(box);
  let timer = null;
  const render = async () => {
    const d = await api("GET", `/api/runs/${id}`);
    const run = d.run;
    const msg = h("div", { id: "run-message" });
    const act = (label, idAttr, fnc, cls) => h("button", { id: idAttr, class: cls || "secondary", onclick: async () => {
      try { await fnc(); } catch (e) { put(msg, errorBox(e)); }
    } }, label);
    const terminal = ["completed", "failed", "cancelled"].includes(run.status);
    const actions = h("div", { class: "row" },
      terminal ? null : act("Cancel", "cancel", async () => { await api("POST", `/api/runs/${id}/cancel`); await render(); }, "danger"),
      ["failed", "cancelled"].includes(run.status) ? act("Replay from start", "replay-start", async () => {
        const r = await api("POST", `/api/runs/${id}/replay`, { from: "start" }); location.hash = `#/run/${r.runId}`;
      }) : null,
      ["failed", "cancelled"].includes(run.status) ? act("Replay from the failed step", "replay-failed", async () => {
        const r = await api("POST", `/api/runs/${id}/replay`, { from: "failed-step" }); location.hash = `#/run/${r.runId}`;
      }) : null);
    const usage = tokenUsage(d.steps);
    const detail = h("div", { id: "step-detail" });
    put(box, 
      h("h1", {}, `Run ${run.id} `, h("span", { id: "run-status" }, badge(run.status))),
      h("p", { class: "muted" }, `${run.function_id} · created ${when(Date.parse(run.created_at) || run.created_at)}`, run.replay_of ? h("span", {}, " · replay of ", h("a", { href: `#/run/${run.replay_of}` }, run.replay_of)) : ""),
      actions, msg,
      run.error ? h("div", { class: "error" }, `${run.error.name}: ${run.error.message}`) : null,
      usage.calls ? h("p", { id: "usage" }, `LLM calls: ${usage.calls} · tokens in ${usage.input} / out ${usage.output}`, usage.cost ? ` · $${usage.cost.toFixed(4)}` : "") : null,
      h("div", { class: "card" }, h("h2", {}, "Timeline"), gantt(d.steps, detail)),
      detail,
      h("div", { class: "card" }, h("h2", {}, "Event"), json(d.event)),
      run.output ? h("div", { class: "card" }, h("h2", {}, "Output"), json(run.output)) : null);
    if (terminal && timer) { clearInterval(timer); timer = null; }
    return terminal;
  };
  const done = await render();
  if (!done) {
    timer = setInterval(() => render().catch(() => {}), 1000);
    onLeave(() => timer && clearInterval(timer));
  }
}

function tokenUsage(steps) {
  const u = { calls: 0, input: 0, output: 0, cost: 0 };
  for (const s of steps) {
    for (const c of (s.output && s.output.calls) || []) {
      u.calls += 1; u.input += c.input_tokens || 0; u.output += c.output_tokens || 0; u.cost += c.cost_usd || 0;
    }
  }
  return u;
}

function ts(v) { return typeof v === "number" ? v : Date.parse(v); }

function gantt(steps, detail) {
  if (!steps.length) return h("p", { class: "muted" }, "No steps yet.");
  const spans = steps.map((s) => {
    const start = ts(s.started_at);
    const attempts = (s.attempts || []).map((a) => ({ start: ts(a.started_at), end: ts(a.started_at) + a.duration_us / 1000, failed: !!a.error }));
    const waitEnd = s.ended_at ? ts(s.ended_at) : s.wake_at ? ts(s.wake_at) : Date.now();
    const wait = s.kind !== "run" ? { start, end: Math.min(waitEnd, Date.now()) } : null;
    return { s, start, attempts, wait };
  });
  const t0 = Math.min(...spans.map((x) => x.start));
  const t1 = Math.max(...spans.map((x) => Math.max(x.start, ...x.attempts.map((a) => a.end), x.wait ? x.wait.end : 0)), t0 + 1);
  const pct = (t) => `${(((t - t0) / (t1 - t0)) * 100).toFixed(2)}%`;
  const width = (a, b) => `${Math.max(((b - a) / (t1 - t0)) * 100, 0.3).toFixed(2)}%`;
  return h("div", { class: "gantt", id: "gantt" }, spans.map(({ s, attempts, wait }) => h("div", { class: "gantt-row", "data-step": s.step_id, onclick: () => {
    put(detail, h("div", { class: "card" }, h("h3", {}, `${s.step_id} (${s.kind}, ${s.status})`),
      h("p", { class: "muted" }, attempts.map((a, i) => `attempt ${i + 1}: ${dur(Math.round((a.end - a.start) * 1000))}${a.failed ? " failed" : ""}`).join(" · ")),
      s.error ? h("div", { class: "error" }, `${s.error.name}: ${s.error.message}`) : null,
      s.detail ? json(s.detail) : null, s.output !== null && s.output !== undefined ? json(s.output) : null));
  } },
  h("div", { class: "gantt-label", title: s.step_id }, s.step_id),
  h("div", { class: "gantt-track" },
    wait ? h("div", { class: "bar wait", style: `left:${pct(wait.start)};width:${width(wait.start, wait.end)}`, title: `${s.kind} ${s.status}` }) : null,
    attempts.map((a) => h("div", { class: `bar${a.failed ? " failed" : ""}`, style: `left:${pct(a.start)};width:${width(a.start, a.end)}` }))))));
}

// ---- functions -----------------------------------------------------------------------

async function functionsView() {
  const r = await api("GET", "/api/functions");
  setMain(h("h1", {}, "Functions"), h("table", { id: "functions" },
    h("tr", {}, ["Function", "Triggers", "Retries", "Concurrency", "Throttle", "Idempotency", "In use"].map((t) => h("th", {}, t))),
    r.functions.map((f) => {
      const c = f.config;
      return h("tr", {},
        h("td", {}, h("b", {}, f.id), h("div", { class: "muted" }, c.name || "")),
        h("td", {}, (c.triggers || []).map((t) => h("div", {}, t.event, t.if ? ` if ${t.if}` : ""))),
        h("td", {}, c.retries ?? ""),
        h("td", {}, (c.concurrency || []).map((l) => h("div", {}, `${l.limit}${l.key ? ` per ${l.key}` : ""}`))),
        h("td", {}, c.throttle ? `${c.throttle.limit} per ${c.throttle.period}${c.throttle.key ? ` per ${c.throttle.key}` : ""}` : ""),
        h("td", {}, c.idempotency || ""),
        h("td", {}, f.concurrency.filter((u) => u.inUse || u.waiting).map((u) => h("div", {}, `${u.key || "all"}: ${u.inUse}/${u.limit}${u.waiting ? ` (+${u.waiting} waiting)` : ""}`))));
    })));
}
