// An independent permessage-deflate echo server: Node's `ws` package (npm),
// not written by this project. Listens on 127.0.0.1 on a free port, prints
// "PORT <n>" once ready, echoes every message with its type, compresses
// every message it sends (threshold 0), and exits when stdin closes.
'use strict';
const { WebSocketServer } = require('ws');

const wss = new WebSocketServer({
  host: '127.0.0.1',
  port: 0,
  maxPayload: 256 * 1024 * 1024,
  perMessageDeflate: { threshold: 0 },
});
wss.on('listening', () => {
  process.stdout.write(`PORT ${wss.address().port}\n`);
});
wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
});
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
