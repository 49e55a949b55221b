// The official Svix JavaScript SDK (npm `svix`, pinned in package-lock.json)
// against a running Hookline, unchanged except `serverUrl`: the core flow of
// docs/svix-compatibility.md, with every delivery received by a real HTTP
// server on 127.0.0.1 that verifies it with the SDK's own
// `new Webhook(secret).verify(body, headers)`.
//
//   node tests/svix/js/sdk_flow.mjs --server http://127.0.0.1:8080 --token <operator key>
//
// Exits 0 when every check passed. Run by the e2e test
// `svix_sdk::javascript_sdk_core_flow`.

import http from "node:http";
import { randomUUID } from "node:crypto";
import { ApiException, MessageStatus, Svix, Webhook } from "svix";

const WAIT_MS = 60_000;

function arg(name) {
  const i = process.argv.indexOf(name);
  if (i < 0 || i + 1 >= process.argv.length) throw new Error(`${name} is required`);
  return process.argv[i + 1];
}

function check(cond, what) {
  if (!cond) throw new Error(`check failed: ${what}`);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function eventually(what, fn) {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${WAIT_MS} ms`);
    await sleep(50);
  }
}

async function expectError(what, status, code, fn) {
  try {
    await fn();
  } catch (e) {
    check(e instanceof ApiException, `${what}: an ApiException, got ${e}`);
    check(e.code === status, `${what}: status ${e.code} (${JSON.stringify(e.body)}), expected ${status}`);
    if (status === 422) {
      check(Array.isArray(e.body.detail) && e.body.detail.every((d) => d.loc && d.msg && d.type),
        `${what}: 422 detail ${JSON.stringify(e.body)}`);
    } else {
      check(typeof e.body === "object" && e.body.detail, `${what}: body ${JSON.stringify(e.body)}`);
      if (code) check(e.body.code === code, `${what}: code ${e.body.code}, expected ${code}`);
    }
    return e;
  }
  throw new Error(`${what}: succeeded, expected ${status}`);
}

class Receiver {
  constructor() {
    this.secrets = new Map();
    this.received = [];
    this.server = http.createServer((req, res) => {
      const chunks = [];
      req.on("data", (c) => chunks.push(c));
      req.on("end", () => {
        const body = Buffer.concat(chunks).toString("utf8");
        const parts = req.url.split("/").filter(Boolean);
        const name = parts[1] ?? "";
        const verifiedWith = [];
        const errors = [];
        for (const secret of this.secrets.get(name) ?? []) {
          try {
            new Webhook(secret).verify(body, req.headers);
            verifiedWith.push(secret);
          } catch (e) {
            errors.push(String(e));
          }
        }
        this.received.push({ path: req.url, name, body, headers: req.headers, verifiedWith, errors });
        res.statusCode = parts[0] === "fail" ? 500 : verifiedWith.length ? 204 : 401;
        res.end();
      });
    });
  }
  async start() {
    await new Promise((r) => this.server.listen(0, "127.0.0.1", r));
    this.port = this.server.address().port;
  }
  url(path) {
    return `http://127.0.0.1:${this.port}${path}`;
  }
  trust(name, ...secrets) {
    this.secrets.set(name, secrets);
  }
  deliveries({ name, svixId } = {}) {
    return this.received.filter(
      (r) => (name === undefined || r.name === name) && (svixId === undefined || r.headers["svix-id"] === svixId)
    );
  }
  waitFor(what, count, filter) {
    return eventually(what, () => {
      const got = this.deliveries(filter);
      return got.length >= count ? got : null;
    });
  }
}

async function run(server, token) {
  const receiver = new Receiver();
  await receiver.start();
  const svix = new Svix(token, { serverUrl: server });
  const runId = randomUUID().slice(0, 8);
  const step = (s) => console.log(`-- ${s}`);

  step("health");
  await svix.health.get();

  step("errors in Svix's shape");
  await expectError("a wrong token", 401, "authentication_failed", () =>
    new Svix("not-a-key", { serverUrl: server }).application.list());
  await expectError("an unknown app", 404, "not_found", () => svix.application.get(`nobody-${runId}`));

  step("1. create an app, then get-or-create it again");
  const uid = `acme-js-${runId}`;
  const app = await svix.application.create({ name: "Acme", uid, metadata: { plan: "pro" } });
  check(app.id.startsWith("app_") && app.uid === uid && app.createdAt instanceof Date, `app ${JSON.stringify(app)}`);
  check(!Number.isNaN(app.createdAt.getTime()), "createdAt parses");
  const again = await svix.application.getOrCreate({ name: "Ignored", uid });
  check(again.id === app.id && again.name === "Acme", "getOrCreate returns the existing app");
  await expectError("a second app with that uid", 409, "conflict", () =>
    svix.application.create({ name: "Twice", uid }));

  step("event types");
  const etName = `invoice.paid.js.${runId}`;
  const et = await svix.eventType.create({ name: etName, description: "An invoice was paid" });
  check(et.name === etName && et.deprecated === false, "event type created");
  let names = [];
  let iterator = null;
  for (;;) {
    const page = await svix.eventType.list({ limit: 250, iterator });
    names = names.concat(page.data.map((e) => e.name));
    if (page.done) break;
    iterator = page.iterator;
  }
  check(names.includes(etName), "event type listed");

  step("2. endpoints pointing at the receiver");
  const epAll = await svix.endpoint.create(uid, { url: receiver.url("/ok/all"), uid: "all", description: "everything" });
  const epPaid = await svix.endpoint.create(uid, { url: receiver.url("/ok/paid"), eventTypes: [etName] });
  const epEu = await svix.endpoint.create(uid, { url: receiver.url("/ok/eu"), channels: ["eu"] });
  check(epAll.id.startsWith("ep_"), "endpoint id");
  await expectError("an ftp URL", 422, null, () => svix.endpoint.create(uid, { url: "ftp://example.com/x" }));

  step("3. read the endpoint secrets");
  const secrets = {};
  for (const [name, ep] of [["all", epAll], ["paid", epPaid], ["eu", epEu]]) {
    const { key } = await svix.endpoint.getSecret(uid, ep.id);
    check(key.startsWith("whsec_"), "a whsec_ secret");
    secrets[name] = key;
    receiver.trust(name, key);
  }

  step("4. send messages");
  const payload = { type: "invoice.paid", id: "inv_1", amount: 1250, note: "é ✓", nested: { b: [1, 2], a: null } };
  const msg = await svix.message.create(uid, { eventType: etName, eventId: `evt-${runId}`, payload });
  check(msg.id.startsWith("msg_") && msg.eventId === `evt-${runId}`, "message created");
  await expectError("a duplicate eventId", 409, "conflict", () =>
    svix.message.create(uid, { eventType: etName, eventId: `evt-${runId}`, payload: {} }));
  const eu = await svix.message.create(uid, { eventType: "order.shipped", payload: { order: 7 }, channels: ["eu"] });
  const key = `idem-js-${runId}`;
  const first = await svix.message.create(uid, { eventType: "order.placed", payload: { n: 1 } }, { idempotencyKey: key });
  const second = await svix.message.create(uid, { eventType: "order.placed", payload: { n: 1 } }, { idempotencyKey: key });
  check(first.id === second.id, "idempotency key replays the first answer");

  step("deliveries verified with Webhook(secret).verify");
  const got = await receiver.waitFor("paid to all", 1, { name: "all", svixId: msg.id });
  await receiver.waitFor("paid to paid", 1, { name: "paid", svixId: msg.id });
  await receiver.waitFor("eu to eu", 1, { name: "eu", svixId: eu.id });
  check(got[0].body === JSON.stringify(payload), `the body is the payload exactly: ${got[0].body}`);
  check(receiver.deliveries({ name: "paid", svixId: eu.id }).length === 0, "eventTypes filter");
  check(receiver.deliveries({ name: "eu", svixId: msg.id }).length === 0, "channels filter");

  step("5. list messages");
  const listed = await svix.message.list(uid, { withContent: true, limit: 250 });
  const byId = new Map(listed.data.map((m) => [m.id, m]));
  for (const m of [msg, eu, first]) check(byId.has(m.id), `${m.id} listed`);
  check(JSON.stringify(byId.get(msg.id).payload) === JSON.stringify(payload), "payload with content");
  const onlyPaid = await svix.message.list(uid, { eventTypes: [etName] });
  check(onlyPaid.data.length === 1 && onlyPaid.data[0].id === msg.id, "event_types filter");
  const onEu = await svix.message.list(uid, { channel: "eu" });
  check(onEu.data.length === 1 && onEu.data[0].id === eu.id, "channel filter");
  const future = new Date(Date.now() + 3600_000);
  check((await svix.message.list(uid, { after: future })).data.length === 0, "after filter");
  check((await svix.message.list(uid, { before: future })).data.length >= 3, "before filter");
  check((await svix.message.get(uid, `evt-${runId}`)).id === msg.id, "get by eventId");

  step("6. attempts by message and by endpoint");
  const byMsg = await eventually("attempts", async () => {
    const a = await svix.messageAttempt.listByMsg(uid, msg.id);
    return a.data.length >= 2 ? a : null;
  });
  for (const a of byMsg.data) {
    check(a.id.startsWith("atmpt_") && a.status === MessageStatus.Success, `attempt ${JSON.stringify(a)}`);
    check(a.timestamp instanceof Date && !Number.isNaN(a.timestamp.getTime()), "attempt timestamp");
  }
  // Attempt lists are read models: wait for both messages' attempts.
  const attempted = await eventually("attempts by endpoint", async () => {
    const byEp = await svix.messageAttempt.listByEndpoint(uid, epAll.id, { status: MessageStatus.Success });
    const ids = new Set(byEp.data.map((a) => a.msgId));
    return ids.has(msg.id) && ids.has(eu.id) ? ids : null;
  });
  check(attempted.has(msg.id) && attempted.has(eu.id), "attempts by endpoint");

  step("7. resend");
  const before = receiver.deliveries({ name: "paid", svixId: msg.id }).length;
  const resent = await svix.messageAttempt.resend(uid, msg.id, epPaid.id);
  check(resent !== null && typeof resent === "object", "resend answers {}");
  await receiver.waitFor("the resent message", before + 1, { name: "paid", svixId: msg.id });

  step("7b. endpoint headers, one attempt, destinations, stats");
  await svix.endpoint.setHeaders(uid, epEu.id, { headers: { "X-Team": "eu", Authorization: "Bearer t0ken-for-eu" } });
  let heads = await svix.endpoint.getHeaders(uid, epEu.id);
  check(JSON.stringify(heads.headers) === JSON.stringify({ "X-Team": "eu" }), `headers ${JSON.stringify(heads)}`);
  check(JSON.stringify([...heads.sensitive]) === JSON.stringify(["Authorization"]), "sensitive headers named");
  await svix.endpoint.patchHeaders(uid, epEu.id, { headers: { "X-Region": "eu-west" }, deleteHeaders: ["X-Team"] });
  heads = await svix.endpoint.getHeaders(uid, epEu.id);
  check(JSON.stringify(heads.headers) === JSON.stringify({ "X-Region": "eu-west" }), `patched headers ${JSON.stringify(heads)}`);
  const one = await svix.messageAttempt.get(uid, msg.id, byMsg.data[0].id);
  check(one.id === byMsg.data[0].id && one.msgId === msg.id, "one attempt by id");
  const dests = await svix.messageAttempt.listAttemptedDestinations(uid, msg.id);
  const destIds = dests.data.map((d) => d.id).sort();
  check(JSON.stringify(destIds) === JSON.stringify([epAll.id, epPaid.id].sort()), `destinations ${destIds}`);
  check(dests.data.every((d) => d.createdAt instanceof Date), "destination times parsed");
  const stats = await svix.endpoint.getStats(uid, epAll.id);
  check(stats.success >= 2 && stats.fail === 0 && stats.sending === 0, `stats ${JSON.stringify(stats)}`);

  step("7c. app portal access and logout, attempted messages, an example message");
  const access = await svix.authentication.appPortalAccess(uid);
  check(access.token.startsWith("hlp_") && access.url.endsWith(`/console/portal?token=${access.token}`),
    `portal access ${JSON.stringify(access)}`);
  const opened = await fetch(access.url, { redirect: "manual" });
  check(opened.status === 303 && opened.headers.get("location") === "/console/subscriptions", `the link opens: ${opened.status}`);
  await new Svix(access.token, { serverUrl: server }).authentication.logout();
  const closed = await fetch(access.url, { redirect: "manual" });
  check(closed.status === 410, `a logged-out link answers 410: ${closed.status}`);
  await expectError("logout with an organisation token", 401, "authentication_failed", () => svix.authentication.logout());
  const sentToAll = await eventually("the endpoint's attempted messages", async () => {
    const page = await svix.messageAttempt.listAttemptedMessages(uid, epAll.id);
    const ids = new Map(page.data.map((m) => [m.id, m]));
    return ids.has(msg.id) && ids.has(eu.id) ? ids : null;
  });
  check(sentToAll.get(msg.id).status === MessageStatus.Success && sentToAll.get(msg.id).statusText === "success",
    `attempted message ${JSON.stringify(sentToAll.get(msg.id))}`);
  check(sentToAll.get(msg.id).timestamp instanceof Date, "attempted message time parsed");
  const firstPage = await svix.messageAttempt.listAttemptedMessages(uid, epAll.id, { limit: 1 });
  check(firstPage.data.length === 1 && !firstPage.done && firstPage.iterator, "a page of one");
  const ping = await svix.endpoint.sendExample(uid, epAll.id, { eventType: "svix.ping" });
  check(ping.eventType === "svix.ping" && JSON.stringify(ping.payload) === JSON.stringify({ success: true }), `example ${JSON.stringify(ping)}`);
  const example = (await receiver.waitFor("the example message", 1, { name: "all", svixId: ping.id }))[0];
  check(JSON.stringify(JSON.parse(example.body)) === JSON.stringify({ success: true }), "the example's body");
  check(receiver.deliveries({ name: "paid", svixId: ping.id }).length === 0, "no other endpoint got the example");

  step("8. paginate with iterators");
  const sent = [];
  for (let i = 0; i < 5; i++) sent.push((await svix.message.create(uid, { eventType: "page.js", payload: { i } })).id);
  let seen = [];
  iterator = null;
  for (;;) {
    const page = await svix.message.list(uid, { eventTypes: ["page.js"], limit: 2, iterator });
    seen = seen.concat(page.data.map((m) => m.id));
    if (page.done) break;
    iterator = page.iterator;
  }
  check(JSON.stringify(seen) === JSON.stringify([...sent].reverse()), `every message once, newest first: ${seen}`);

  step("9. errors");
  await expectError("a bad limit", 422, null, () => svix.message.list(uid, { limit: 0 }));
  await expectError("an unknown message", 404, "not_found", () => svix.message.get(uid, "msg_unknown"));

  step("rotate, then both secrets verify during the grace period");
  await svix.endpoint.rotateSecret(uid, epPaid.id, {});
  const { key: newKey } = await svix.endpoint.getSecret(uid, epPaid.id);
  check(newKey !== secrets.paid, "a new secret");
  receiver.trust("paid", newKey, secrets.paid);
  const m2 = await svix.message.create(uid, { eventType: etName, payload: { after: "rotation" } });
  const d2 = (await receiver.waitFor("after rotation", 1, { name: "paid", svixId: m2.id }))[0];
  check(d2.verifiedWith.length === 2, "both secrets verify");

  await svix.endpoint.delete(uid, epEu.id);
  await expectError("a deleted endpoint", 404, "not_found", () => svix.endpoint.get(uid, epEu.id));

  for (const r of receiver.deliveries()) check(r.verifiedWith.length > 0, `every delivery verifies: ${r.path} ${r.errors}`);
  console.log(`ok: ${receiver.deliveries().length} deliveries verified`);
  receiver.server.close();
}

run(arg("--server"), arg("--token")).then(
  () => process.exit(0),
  (e) => {
    console.error(e && e.stack ? e.stack : e);
    process.exit(1);
  }
);
