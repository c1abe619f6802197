// A Node `ws` client for verb's interop tests: connects to argv[2] with permessage-deflate
// (ws's default offer), sends each message of a fixed list, checks the echo, prints a JSON
// report and exits 0 on success.
const WebSocket = require("ws");

const url = process.argv[2];
const messages = [
  "small",
  "repeat ".repeat(20000),
  "ünïcödé ✓ ".repeat(500),
  Buffer.alloc(100000, 7),
];
const ws = new WebSocket(url, { perMessageDeflate: { threshold: 0 } });
const timer = setTimeout(() => { console.log(JSON.stringify({ error: "timeout" })); process.exit(2); }, 10000);
const results = [];
ws.on("open", () => ws.send(messages[0]));
ws.on("message", (data, isBinary) => {
  const expected = messages[results.length];
  const got = isBinary ? Buffer.from(data) : data.toString("utf8");
  results.push(isBinary ? Buffer.compare(got, expected) === 0 : got === expected);
  if (results.length < messages.length) {
    ws.send(messages[results.length]);
  } else {
    const extensions = ws.extensions;
    ws.close(1000, "done");
    ws.on("close", (code) => {
      clearTimeout(timer);
      console.log(JSON.stringify({ extensions, results, code }));
      process.exit(results.every(Boolean) ? 0 : 1);
    });
  }
});
ws.on("error", (err) => { console.log(JSON.stringify({ error: String(err) })); process.exit(3); });
