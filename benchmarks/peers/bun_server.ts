// Bun peer: Bun.serve's built-in WebSocket server (uWebSockets inside), fan-out with
// server.publish. Same workloads as the Python peers (see _common.py):
//   bun run benchmarks/peers/bun_server.ts --port 9001 [--mode echo|broadcast] [--host H]
const argv = process.argv.slice(2);
function arg(name: string, fallback: string): string {
  const i = argv.indexOf(name);
  return i >= 0 && i + 1 < argv.length ? argv[i + 1] : fallback;
}
const port = parseInt(arg("--port", "0"), 10);
const hostname = arg("--host", "127.0.0.1");
const mode = arg("--mode", "echo");
const TOPIC = "bench";
const common = {
  perMessageDeflate: false,
  idleTimeout: 0,
  sendPings: false,
  maxPayloadLength: 64 * 1024 * 1024,
};
let subscribers = 0;

type Data = { sub: boolean };

const server = Bun.serve<Data, undefined>({
  port,
  hostname,
  fetch(req, server) {
    const sub = mode === "broadcast" && new URL(req.url).pathname === "/sub";
    if (server.upgrade(req, { data: { sub } })) return;
    return new Response("websocket upgrade expected", { status: 426 });
  },
  websocket:
    mode === "echo"
      ? {
          ...common,
          message(ws, message) {
            ws.send(message);
          },
        }
      : {
          ...common,
          open(ws) {
            if (ws.data.sub) {
              ws.subscribe(TOPIC);
              subscribers++;
            }
          },
          close(ws) {
            if (ws.data.sub) subscribers--;
          },
          message(ws, message) {
            if (typeof message !== "string") {
              ws.send(message);
            } else if (message === "count") {
              ws.send(String(subscribers));
            } else {
              const parts = message.split(" ");
              if (parts.length === 3 && parts[0] === "go") {
                const n = parseInt(parts[1], 10), size = parseInt(parts[2], 10);
                for (let i = 0; i < n; i++) server.publish(TOPIC, new Uint8Array(size).fill(i & 255));
              }
            }
          },
        },
});
console.log(`bun: listening on ${server.hostname}:${server.port}`);
