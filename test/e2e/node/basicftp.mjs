// basic-ftp (the most used Node.js FTP client) against a Ferry server.
// argv: host port user pass secure(0|1). Prints "ok STEP" per step and
// "NODE-OK" at the end; any failure exits 1 with the step and the error.
import * as ftp from "basic-ftp";
import { Readable, Writable } from "node:stream";
import { createHash } from "node:crypto";

const [host, port, user, password, secure] = process.argv.slice(2);
const sha = (b) => createHash("sha256").update(b).digest("hex");

function sink() {
  const chunks = [];
  const w = new Writable({ write(c, _e, cb) { chunks.push(c); cb(); } });
  w.bytes = () => Buffer.concat(chunks);
  return w;
}

async function step(name, fn) {
  try {
    await fn();
    console.log("ok " + name);
  } catch (e) {
    console.log(`FAIL ${name}: ${e && e.stack ? e.stack : e} (code ${e && e.code})`);
    process.exit(1);
  }
}

// refused runs fn and requires an FTP error reply with the given code, not a
// broken connection (ECONNRESET was what a refused transfer gave basic-ftp).
async function refused(code, fn) {
  try {
    await fn();
  } catch (e) {
    if (e instanceof ftp.FTPError && e.code === code) return;
    throw new Error(`want FTP error ${code}, got ${e && e.code}: ${e && e.message}`);
  }
  throw new Error(`want FTP error ${code}, but it succeeded`);
}

const client = new ftp.Client(30000);
await step("connect", () =>
  client.access({ host, port: Number(port), user, password, secure: secure === "1", secureOptions: { rejectUnauthorized: false } }));
const data = Buffer.alloc(3 << 20);
for (let i = 0; i < data.length; i++) data[i] = (i * 7919) & 0xff;
await step("upload", () => client.uploadFrom(Readable.from([data]), "node.bin"));
await step("download", async () => {
  const w = sink();
  await client.downloadTo(w, "node.bin");
  if (sha(w.bytes()) !== sha(data)) throw new Error(`downloaded ${w.bytes().length} bytes, not what was uploaded`);
});
await step("list", async () => {
  const l = await client.list();
  const e = l.find((f) => f.name === "node.bin");
  if (!e || e.size !== data.length) throw new Error("node.bin missing or wrong size in " + JSON.stringify(l));
});
await step("size", async () => {
  if ((await client.size("node.bin")) !== data.length) throw new Error("wrong SIZE");
});
await step("resume", async () => {
  const w = sink();
  await client.downloadTo(w, "node.bin", 1000);
  if (sha(w.bytes()) !== sha(data.subarray(1000))) throw new Error("resumed download differs");
});
await step("retr-missing", () => refused(550, () => client.downloadTo(sink(), "missing.bin")));
await step("stor-missing-dir", () => refused(550, () => client.uploadFrom(Readable.from([data]), "nodir/x.bin")));
await step("list-missing", () => refused(550, () => client.list("missing-dir")));
await step("still-usable", async () => {
  await client.ensureDir("/sub/deeper");
  await client.cd("/");
  await client.rename("node.bin", "sub/renamed.bin");
  await client.remove("sub/renamed.bin");
  await client.removeDir("sub");
  const l = await client.list();
  if (l.length !== 0) throw new Error("home not empty: " + JSON.stringify(l));
});
client.close();
console.log("NODE-OK");
