// Conformance app for LearnFlow's Rust integration tests.
//
// It serves the REAL `inngest` npm SDK through its express adapter, so the Rust server is tested
// against the same wire protocol an unmodified user app speaks. The SDK major version is picked
// at start-up by SDK_MAJOR ("4", the default, or "3"); both majors are installed side by side
// (`inngest` = 4.24.0, `inngest-v3` = npm:inngest@3.54.2).
//
// Environment:
//   SDK_MAJOR   "4" (default) or "3"
//   PORT        port to listen on (default 3000), always on 127.0.0.1
//   STEP_LOG    optional path of a JSON-lines file that step bodies append start/end records to
//   INNGEST_DEV, INNGEST_BASE_URL, INNGEST_SIGNING_KEY, INNGEST_EVENT_KEY, ...  read by the SDK
//
// Prints exactly one line `listening on <port>` on stdout once the HTTP server is ready.

import { appendFileSync } from "node:fs";
import express from "express";
import * as v4 from "inngest";
import * as v4express from "inngest/express";
import * as v3 from "inngest-v3";
import * as v3express from "inngest-v3/express";

const SDK_MAJOR = process.env.SDK_MAJOR ?? "4";
if (SDK_MAJOR !== "3" && SDK_MAJOR !== "4") {
  throw new Error(`SDK_MAJOR must be "3" or "4", got ${JSON.stringify(SDK_MAJOR)}`);
}
const isV3 = SDK_MAJOR === "3";

// The client is typed with the v4 types; at run time it is the chosen major's client. The two
// majors' user-facing APIs used here (step.*, send, error classes) are the same.
type Client = v4.Inngest;
export const inngest: Client = isV3
  ? (new v3.Inngest({ id: "conformance-app" }) as unknown as Client)
  : new v4.Inngest({ id: "conformance-app" });

// Error classes must come from the SDK that runs the function.
const NonRetriableError: typeof v4.NonRetriableError = isV3 ? (v3.NonRetriableError as any) : v4.NonRetriableError;
const RetryAfterError: typeof v4.RetryAfterError = isV3 ? (v3.RetryAfterError as any) : v4.RetryAfterError;
const serve: typeof v4express.serve = isV3 ? (v3express.serve as any) : v4express.serve;

type Ctx = v4.GetFunctionInput<Client>;
type Opts = {
  retries?: number;
  rateLimit?: { limit: number; period: string; key?: string };
  debounce?: { period: string; key?: string; timeout?: string };
  singleton?: { key?: string; mode: "skip" | "cancel" };
  batchEvents?: { maxSize: number; timeout: string; key?: string };
  concurrency?: { limit: number; key?: string }[];
  onFailure?: (ctx: any) => Promise<unknown>;
};
type Trigger = { event: string } | { cron: string };

// createFunction with the signature of the chosen major:
//   v4: createFunction({ id, triggers: [trigger], ...opts }, handler)
//   v3: createFunction({ id, ...opts }, trigger, handler)
function fn(id: string, opts: Opts, trigger: Trigger, handler: (ctx: Ctx) => Promise<unknown>): v4.InngestFunction.Any {
  if (isV3) {
    return (inngest as any).createFunction({ id, ...opts }, trigger, handler);
  }
  return inngest.createFunction({ id, ...(opts as any), triggers: [trigger] }, handler as any);
}

const sleepMs = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// Appends one JSON line to STEP_LOG (if set) so tests can check step timing / concurrency.
function logStep(run: string, step: string, phase: "start" | "end", user: unknown) {
  const path = process.env.STEP_LOG;
  if (!path) return;
  const line = { run, step, phase, t: Date.now(), pid: process.pid, user: user ?? null };
  appendFileSync(path, JSON.stringify(line) + "\n");
}

// A step body wrapped with start/end logging and an optional delay.
async function logged<T>(runId: string, step: string, user: unknown, delayMs: number, body: () => T): Promise<T> {
  logStep(runId, step, "start", user);
  if (delayMs > 0) await sleepMs(delayMs);
  const out = body();
  logStep(runId, step, "end", user);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Functions (composite ids are "conformance-app-<id>")

const seq = fn("seq", {}, { event: "test/seq" }, async ({ event, step }) => {
  const a = await step.run("a", () => "A");
  const b = await step.run("b", () => a + "B");
  return { b, input: event.data };
});

const parallel = fn("parallel", {}, { event: "test/parallel" }, async ({ step }) => {
  const [x, y] = await Promise.all([step.run("p1", () => 1), step.run("p2", () => 2)]);
  return step.run("after", () => x + y);
});

const loop = fn("loop", {}, { event: "test/loop" }, async ({ step }) => {
  let n = 0;
  for (let i = 0; i < 3; i++) n += await step.run("inc", () => 1);
  return n;
});

const sleepy = fn("sleepy", {}, { event: "test/sleep" }, async ({ event, step }) => {
  await step.sleep("nap", event.data?.sleep ?? "2s");
  return "woke";
});

const waiter = fn("waiter", {}, { event: "test/wait" }, async ({ event, step }) => {
  const evt = await step.waitForEvent("wait-resume", {
    event: "test/resume",
    match: "data.id",
    timeout: event.data?.timeout ?? "1m",
  });
  return evt === null ? "timeout" : evt.data;
});

const child = fn("child", {}, { event: "test/child" }, async ({ event }) => ({ doubled: event.data.n * 2 }));

const parent = fn("parent", {}, { event: "test/parent" }, async ({ step }) =>
  step.invoke("call-child", { function: child, data: { n: 21 } }),
);

// Its onFailure handler becomes a second function, "non-retriable-failure", triggered by
// the executor's `inngest/function.failed` event for this function.
const nonRetriable = fn(
  "non-retriable",
  { retries: 2, onFailure: async ({ error }: any) => ({ handled: error?.message ?? null }) },
  { event: "test/nonretry" },
  async () => {
    throw new NonRetriableError("do not retry me");
  },
);

const retryAfter = fn("retry-after", { retries: 1 }, { event: "test/retryafter" }, async ({ step, attempt }) =>
  step.run("flaky", () => {
    if (attempt === 0) throw new RetryAfterError("try later", 1000);
    return "ok on attempt " + attempt;
  }),
);

const stepFails = fn("step-fails", { retries: 1 }, { event: "test/stepfail" }, async ({ step }) => {
  try {
    await step.run("boom", () => {
      throw new Error("kaboom");
    });
  } catch (err: any) {
    return { caught: err.name + ": " + err.message };
  }
});

// One run per user at a time; three sequential 50 ms steps, logged to STEP_LOG.
const perUser = fn(
  "per-user",
  { concurrency: [{ limit: 1, key: "event.data.userId" }] },
  { event: "test/peruser" },
  async ({ event, step, runId }) => {
    const user = event.data?.userId;
    const done: string[] = [];
    for (const name of ["s1", "s2", "s3"]) {
      done.push(await step.run(name, () => logged(runId, name, user, 50, () => name)));
    }
    return { user, steps: done };
  },
);

// The seed's example: OCR a document, let an "architect" plan agents, run them in parallel, store.
const processDocument = fn(
  "process-document",
  { retries: 3, concurrency: [{ limit: 5, key: "event.data.userId" }] },
  { event: "document.uploaded" },
  async ({ event, step, runId }) => {
    const user = event.data?.userId;
    const docId = event.data?.documentId ?? "doc";
    const delay = Number(event.data?.stepMs ?? 0); // optional per-step delay for timing tests

    const text = await step.run("ocr", () =>
      logged(runId, "ocr", user, delay, () => event.data?.text ?? `text of ${docId}`),
    );
    const plan = await step.run("architect", () =>
      logged(runId, "architect", user, delay, () => ({ agents: ["summarize", "classify", "extract"] })),
    );
    const results = await Promise.all(
      plan.agents.map((name: string) =>
        step.run(`agent-${name}`, () =>
          logged(runId, `agent-${name}`, user, delay, () => ({ agent: name, result: `${name}(${text.length} chars)` })),
        ),
      ),
    );
    return step.run("store", () =>
      logged(runId, "store", user, delay, () => ({ documentId: docId, userId: user ?? null, text, results })),
    );
  },
);

// Benchmarks (`learnflow bench inngest`): trivial steps, so the figures are the
// executor's and the protocol's cost per step.
const benchSeq = fn("bench-seq", {}, { event: "bench/seq" }, async ({ event, step }) => {
  const n = Number(event.data?.steps ?? 1000);
  for (let i = 0; i < n; i++) await step.run("s", () => i);
  return n;
});
const benchPar = fn("bench-par", {}, { event: "bench/par" }, async ({ event, step }) => {
  const n = Number(event.data?.steps ?? 10);
  for (let i = 0; i < n; i++) await step.run("s", () => i);
  return n;
});

// step.fetch and step.ai.infer: the executor makes the HTTP request (Gateway and AIGateway ops)
// and the function gets the answer.
const fetcher = fn("fetcher", { retries: 0 }, { event: "test/fetch" }, async ({ event, step }) => {
  const res = await (step as any).fetch(String(event.data.url), {
    method: "POST",
    headers: { "x-from": "step.fetch" },
    body: "ping",
  });
  return { status: res.status, body: await res.text() };
});
const inferer = fn("inferer", { retries: 0 }, { event: "test/infer" }, async ({ event, step }) => {
  const out: any = await (step as any).ai.infer("ask", {
    model: (step as any).ai.models.openai({ model: "tiny", baseUrl: String(event.data.baseUrl), apiKey: "sk-test" }),
    body: { messages: [{ role: "user", content: "say hi" }] },
  });
  return out.choices[0].message.content;
});

// step.waitForSignal, resumed by step.sendSignal from another run (POST /v1/signals).
const signalWaiter = fn("signal-waiter", { retries: 0 }, { event: "test/signal-wait" }, async ({ event, step }) => {
  const got: any = await (step as any).waitForSignal("await-signal", {
    signal: String(event.data.signal),
    timeout: String(event.data.timeout ?? "1m"),
  });
  return got === null ? "timeout" : got;
});
const signalSender = fn("signal-sender", { retries: 0 }, { event: "test/signal-send" }, async ({ event, step }) => {
  const res: any = await (step as any).sendSignal("send-signal", {
    signal: String(event.data.signal),
    data: { note: "from the sender" },
  });
  return { runId: res?.runId ?? null };
});

// rateLimit: one run per user per minute; further events start nothing.
const rateLimited = fn(
  "rate-limited",
  { retries: 0, rateLimit: { limit: 1, period: "1m", key: "event.data.userId" } },
  { event: "test/rate" },
  async ({ event, step }) => step.run("once", () => `ran for ${event.data.userId}`),
);

// debounce: one run per burst of events (per user), with the last event.
const debounced = fn(
  "debounced",
  { retries: 0, debounce: { period: "1s", key: "event.data.userId" } },
  { event: "test/debounce" },
  async ({ event, step }) => step.run("last", () => event.data.n),
);

// A cron trigger; CRON_TICK lets a test tick every few seconds (six fields: seconds first).
const cronTick = fn("cron-tick", { retries: 0 }, { cron: process.env.CRON_TICK ?? "0 0 1 1 *" }, async ({ event, step }) =>
  step.run("tick", () => ({ name: event.name, at: (event.data as any)?.scheduledAt ?? null })),
);

// A wildcard trigger: every event named test/wild.<anything>.
const wildcard = fn("wildcard", { retries: 0 }, { event: "test/wild.*" }, async ({ event, step }) =>
  step.run("echo", () => event.name),
);

// singleton: while a run for a user is active, further events for that user start nothing.
const single = fn(
  "singleton",
  { retries: 0, singleton: { key: "event.data.userId", mode: "skip" } },
  { event: "test/single" },
  async ({ event, step }) => {
    await step.sleep("hold", "1s");
    return step.run("done", () => event.data.n);
  },
);

// batchEvents: up to 3 events per run (per user); the function sees them all.
const batched = fn(
  "batched",
  { retries: 0, batchEvents: { maxSize: 3, timeout: "5s", key: "event.data.userId" } },
  { event: "test/batch" },
  async ({ events, step }: any) => step.run("sum", () => events.map((e: any) => e.data.n)),
);

const functions = [
  seq, parallel, loop, sleepy, waiter, child, parent,
  nonRetriable, retryAfter, stepFails, perUser, processDocument, benchSeq, benchPar,
  fetcher, inferer, signalWaiter, signalSender, rateLimited, debounced, cronTick, wildcard, single, batched,
];

// ---------------------------------------------------------------------------------------------
// HTTP

const app = express();
app.use(express.json({ limit: "10mb" })); // the SDK needs a parsed body (else POSTs fail)

app.use("/api/inngest", serve({ client: inngest, functions }));

// Lets tests make the app call inngest.send(): body {name, data}; answers the SDK's return value.
app.post("/send", async (req, res) => {
  try {
    const { name, data } = req.body ?? {};
    const out = await inngest.send({ name, data: data ?? {} });
    res.json(out);
  } catch (err: any) {
    res.status(500).json({ error: String(err?.message ?? err) });
  }
});

const port = Number(process.env.PORT ?? 3000);
app.listen(port, "127.0.0.1", () => console.log(`listening on ${port}`));
