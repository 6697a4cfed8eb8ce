// "Verify in this browser": the receipt checks of verifier/receipt.py, redone with WebCrypto.
//
// 1. event hash: SHA-256 of the record's RFC 8785 (JCS) form equals the receipt's event_hash;
// 2. log signature: the checkpoint note carries a valid Ed25519 signature by the pinned
//    log key (C2SP signed-note; key ID = SHA-256(name || "\n" || 0x01 || key)[:4]),
//    and its origin is the key's name;
// 3. inclusion: the RFC 9162 §2.1.3.2 inclusion proof of the entry 0x01 || event hash
//    leads to the checkpoint's root.
// Nothing here asks the server: the key is the one the reader pinned (kept in localStorage).
"use strict";

const KEY_STORE = "jianzheng.logKey";

// A failed check, by code; the page gives each code's message in the reader's language.
class CheckFailed extends Error {
  constructor(code) { super(code); this.code = code; }
}
function fail(code) { throw new CheckFailed(code); }
const enc = new TextEncoder();

function b64decode(s) {
  if (typeof s !== "string" || !/^[A-Za-z0-9+/]*={0,2}$/.test(s)) fail("bad_base64");
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

function concat(...parts) {
  const n = parts.reduce((a, p) => a + p.length, 0);
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
}

function equal(a, b) {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i] ^ b[i];
  return d === 0;
}

function hex(b) { return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join(""); }

async function sha256(data) { return new Uint8Array(await crypto.subtle.digest("SHA-256", data)); }

// RFC 8785: object members sorted by UTF-16 code units, no whitespace; strings and the
// record's integers serialise as ECMAScript's JSON.stringify does.
function jcs(v) {
  if (v === null || typeof v !== "object") {
    if (typeof v === "number" && !Number.isSafeInteger(v)) fail("unsafe_number");
    return JSON.stringify(v);
  }
  if (Array.isArray(v)) return "[" + v.map(jcs).join(",") + "]";
  const keys = Object.keys(v).sort();
  return "{" + keys.map((k) => JSON.stringify(k) + ":" + jcs(v[k])).join(",") + "}";
}

async function parseVkey(vkey) {
  const s = vkey.trim();
  const i = s.indexOf("+"), j = s.indexOf("+", i + 1);
  if (i <= 0 || j < 0) fail("bad_key");
  const name = s.slice(0, i), kid = s.slice(i + 1, j), raw = b64decode(s.slice(j + 1));
  if (raw.length !== 33 || raw[0] !== 1) fail("not_ed25519");
  const id = (await sha256(concat(enc.encode(name + "\n"), raw))).slice(0, 4);
  if (hex(id) !== kid.toLowerCase()) fail("key_id");
  return { name, id, pub: raw.slice(1) };
}

async function checkSignature(note, key) {
  const split = note.lastIndexOf("\n\n");
  if (split < 0) fail("malformed_checkpoint");
  const text = note.slice(0, split + 1);
  const lines = note.slice(split + 2).split("\n").filter((l) => l !== "");
  const pub = await crypto.subtle.importKey("raw", key.pub, { name: "Ed25519" }, false, ["verify"]);
  let found = false;
  for (const line of lines) {
    if (!line.startsWith("\u2014 ")) fail("malformed_checkpoint");
    const [name, blob] = line.slice(2).split(" ");
    if (name !== key.name) continue;
    const raw = b64decode(blob);
    if (raw.length < 5 || !equal(raw.slice(0, 4), key.id)) continue;
    const ok = await crypto.subtle.verify({ name: "Ed25519" }, pub, raw.slice(4), enc.encode(text));
    if (!ok) fail("bad_signature");
    found = true;
  }
  if (!found) fail("no_signature");
  const body = text.split("\n");
  if (body[0] !== key.name) fail("origin");
  if (!/^[0-9]+$/.test(body[1])) fail("malformed_checkpoint");
  return { size: Number(body[1]), root: b64decode(body[2]) };
}

async function nodeHash(l, r) { return sha256(concat(new Uint8Array([1]), l, r)); }

// RFC 9162 §2.1.3.2.
async function rootFromProof(index, size, leaf, proof) {
  if (!(index >= 0 && index < size)) fail("proof_shape");
  let fn = index, sn = size - 1, r = leaf;
  for (const p of proof) {
    if (p.length !== 32) fail("proof_shape");
    if (sn === 0) fail("proof_shape");
    if (fn % 2 === 1 || fn === sn) {
      r = await nodeHash(p, r);
      if (fn % 2 === 0) { while (fn !== 0 && fn % 2 === 0) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); } }
    } else {
      r = await nodeHash(r, p);
    }
    fn = Math.floor(fn / 2); sn = Math.floor(sn / 2);
  }
  if (sn !== 0) fail("proof_shape");
  return r;
}

async function verifyAll(keyText, recordText, receiptText) {
  const steps = [];
  const key = await parseVkey(keyText);
  let receipt, record;
  try { receipt = JSON.parse(receiptText); record = JSON.parse(recordText); }
  catch (e) { fail("bad_json"); }
  const eventHash = b64decode(receipt.event_hash);
  try {
    const got = await sha256(enc.encode(jcs(record)));
    if (!equal(got, eventHash)) fail("hash_mismatch");
    if (record.index !== receipt.index) fail("index_mismatch");
    steps.push(["hash", true, ""]);
  } catch (e) { steps.push(["hash", false, e.code || e.message]); }
  let cp = null;
  try { cp = await checkSignature(String(receipt.checkpoint), key); steps.push(["signature", true, ""]); }
  catch (e) { steps.push(["signature", false, e.code || e.message]); }
  try {
    if (cp === null) fail("no_checkpoint");
    const leaf = await sha256(concat(new Uint8Array([0, 1]), eventHash));
    const proof = (receipt.inclusion_proof || []).map(b64decode);
    const root = await rootFromProof(receipt.index, cp.size, leaf, proof);
    if (!equal(root, cp.root)) fail("root_mismatch");
    steps.push(["inclusion", true, ""]);
  } catch (e) { steps.push(["inclusion", false, e.code || e.message]); }
  return steps;
}

document.addEventListener("DOMContentLoaded", () => {
  const box = document.getElementById("verify");
  if (!box) return;
  const keyInput = document.getElementById("log-key");
  keyInput.value = localStorage.getItem(KEY_STORE) || "";
  document.getElementById("pin-key").addEventListener("click", () => {
    localStorage.setItem(KEY_STORE, keyInput.value.trim());
  });
  document.getElementById("run-verify").addEventListener("click", async () => {
    const verdict = document.getElementById("verdict");
    const list = document.getElementById("verify-steps");
    list.replaceChildren();
    verdict.className = "";
    verdict.dataset.result = "running";
    const key = keyInput.value.trim();
    if (!key) { verdict.textContent = box.dataset.noKey; verdict.dataset.result = "failed"; verdict.className = "bad"; return; }
    let steps;
    try {
      steps = await verifyAll(key, document.getElementById("record-json").value, document.getElementById("receipt-json").value);
    } catch (e) {
      steps = [["signature", false, e.code || e.message]];
    }
    let ok = steps.length === 3;
    const messages = JSON.parse(box.dataset.messages || "{}");
    for (const [name, good, err] of steps) {
      const why = err ? (messages[err] || err) : "";
      ok = ok && good;
      const li = document.createElement("li");
      li.dataset.step = name;
      li.dataset.result = good ? "ok" : "failed";
      li.className = good ? "ok" : "bad";
      const label = box.dataset["step" + name[0].toUpperCase() + name.slice(1)];
      li.textContent = (good ? "\u2713 " : "\u2717 ") + label + (why ? ": " + why : "");
      list.append(li);
    }
    verdict.textContent = ok ? box.dataset.ok : box.dataset.failed;
    verdict.dataset.result = ok ? "ok" : "failed";
    verdict.className = ok ? "ok" : "bad";
  });
});
