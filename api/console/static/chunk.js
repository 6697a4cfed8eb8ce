// "Check one chunk": verifier/chunks.py redone with WebCrypto. The chunk's leaf hash is
// SHA-256(0x00 || chunk) (RFC 9162 §2.1.1); its inclusion proof (RFC 9162 §2.1.3.2) must
// lead to the chunk root the reader gives (prefilled with the store's, replaceable by the
// one from a bundle or a receipt), so the check does not rest on the server's word.
"use strict";

(function () {
  function b64decode(s) {
    if (typeof s !== "string" || !/^[A-Za-z0-9+/]*={0,2}$/.test(s)) throw new Error("bad base64");
    const bin = atob(s);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }
  function concat(...parts) {
    const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
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
  async function sha256(data) { return new Uint8Array(await crypto.subtle.digest("SHA-256", data)); }
  async function nodeHash(l, r) { return sha256(concat(new Uint8Array([1]), l, r)); }
  async function rootFromProof(index, size, leaf, proof) {
    if (!(index >= 0 && index < size)) throw new Error("index not below the chunk count");
    let fn = index, sn = size - 1, r = leaf;
    for (const p of proof) {
      if (p.length !== 32) throw new Error("proof hash of the wrong length");
      if (sn === 0) throw new Error("proof too long");
      if (fn % 2 === 1 || fn === sn) {
        r = await nodeHash(p, r);
        if (fn % 2 === 0) { while (fn !== 0 && fn % 2 === 0) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); } }
      } else {
        r = await nodeHash(r, p);
      }
      fn = Math.floor(fn / 2); sn = Math.floor(sn / 2);
    }
    if (sn !== 0) throw new Error("proof too short");
    return r;
  }

  async function checkChunk(sha, index, rootText) {
    const expected = b64decode(rootText.trim());
    if (expected.length !== 32) throw new Error("the chunk root must be 32 bytes in base64");
    const r = await fetch(`/objects/${sha}/chunks/${index}`, { credentials: "same-origin" });
    if (!r.ok) throw new Error(`the server answered ${r.status}`);
    const c = await r.json();
    if (c.index !== index) throw new Error("the server sent another chunk");
    const leaf = await sha256(concat(new Uint8Array([0]), b64decode(c.data)));
    const root = await rootFromProof(index, c.chunk_count, leaf, c.proof.map(b64decode));
    if (!equal(root, expected)) throw new Error("the proof does not lead to the chunk root");
  }

  document.addEventListener("DOMContentLoaded", () => {
    const box = document.getElementById("chunk-check");
    if (!box) return;
    document.getElementById("run-chunk-check").addEventListener("click", async () => {
      const out = document.getElementById("chunk-verdict");
      out.dataset.result = "running";
      out.textContent = "…";
      const index = Number(document.getElementById("chunk-index").value);
      try {
        if (!Number.isSafeInteger(index) || index < 0) throw new Error("a chunk index is a whole number >= 0");
        await checkChunk(box.dataset.sha256, index, document.getElementById("chunk-root").value);
        out.dataset.result = "ok";
        out.className = "ok";
        out.textContent = box.dataset.ok.replace("{index}", String(index));
      } catch (e) {
        out.dataset.result = "failed";
        out.className = "failed";
        out.textContent = box.dataset.failed + e.message;
      }
    });
  });
})();
