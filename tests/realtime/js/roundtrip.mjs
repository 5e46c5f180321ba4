// A browser-style client: the JavaScript socket.io-client (polling first, then the WebSocket upgrade, as browsers
// connect), driven by tests/realtime/test_js_client.py. One JSON object per stdout line:
//   {"event": "ready"}                         joined the streamer's room; the test may send over REST now
//   {"event": "ack", "data": ...}              the acknowledgement of our own socket message
//   {"event": "message", "data": ...}          every `message` broadcast in the room
//   {"event": "error", "data": ...}            every `error` event
// Exits 0 after it has seen its own message and one with the text "from rest", 1 on a timeout or a failure.
// Usage: node roundtrip.mjs <base URL> <streamer id> <sender token> <sender user id>
import { io } from "socket.io-client";

const [base, streamerId, token, senderId] = process.argv.slice(2);
const print = (event, data) => process.stdout.write(JSON.stringify({ event, data }) + "\n");
const fail = (why) => {
  process.stderr.write(`${why}\n`);
  process.exit(1);
};
setTimeout(() => fail("timed out"), 20000).unref();

const socket = io(base, { query: { "Client-ID": "js-test", "Client-Type": "node" }, reconnection: false });
const seen = { own: false, rest: false };
const finish = () => {
  if (seen.own && seen.rest) {
    socket.close();
    process.exit(0);
  }
};

socket.on("connect_error", (err) => fail(`connect_error: ${err.message}`));
socket.on("error", (data) => print("error", data));
socket.on("message", (data) => {
  print("message", data);
  if (data.text === "from js") seen.own = true;
  if (data.text === "from rest") seen.rest = true;
  finish();
});
socket.on("joinedRoom", async ({ roomId }) => {
  if (roomId !== streamerId) fail(`joined ${roomId}`);
  const ack = await socket.timeout(10000).emitWithAck("message", {
    type: "message",
    session_id: null,
    streamer_id: streamerId,
    sender_token: token,
    sender_user_id: senderId,
    sender_username: "js",
    text: "from js",
    timestamp: new Date().toISOString(),
  });
  print("ack", ack);
  print("ready");
});
socket.on("connect", () => socket.emit("joinRoom", { roomId: streamerId }));
