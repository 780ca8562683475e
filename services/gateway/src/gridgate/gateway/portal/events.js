// The live event streams (docs/events.md) read with fetch: they take the bearer token in a
// header, which EventSource cannot send. Messages without data (resume points, keep-alives)
// only move the resume id; a stream that ends is opened again after the last id.
import { freshToken } from './auth.js';

const RECONNECT_MS = 1000;
// Both streams send something at once (GET /api/events a resume point, a job's stream its
// replay) and a keep-alive every 15 s: a stream silent this long from its opening is held
// back by a buffering proxy, and is given up for polling.
const FIRST_BYTES_MS = 45000;

export class StreamUnavailable extends Error {}

// Calls onEvent(cloudEvent) for each event of the stream at `path` until `signal` aborts.
// onOpen() runs each time the stream is open. Throws StreamUnavailable when the first
// opening fails (an older gateway, a proxy that refuses or buffers it): the caller polls.
export async function follow(path, { signal, onOpen, onEvent }) {
  let lastId = null;
  let opened = false;
  while (!signal.aborted) {
    try {
      lastId = await readStream(path, lastId, signal, () => { opened = true; onOpen(); }, onEvent);
    } catch (error) {
      if (signal.aborted) return;
      if (!opened) throw error instanceof StreamUnavailable ? error : new StreamUnavailable(error.message);
      // The connection broke: open it again after the last id, below.
    }
    if (!signal.aborted) await new Promise((resolve) => { setTimeout(resolve, RECONNECT_MS); });
  }
}

async function readStream(path, lastId, signal, onOpen, onEvent) {
  const headers = { Accept: 'text/event-stream' };
  const bearer = await freshToken();
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  if (lastId) headers['Last-Event-ID'] = lastId;
  const answer = await fetch(path, { headers, signal, cache: 'no-store' });
  const type = answer.headers.get('content-type') || '';
  if (!answer.ok || !type.startsWith('text/event-stream') || !answer.body) {
    throw new StreamUnavailable(`event stream: HTTP ${answer.status} ${type}`);
  }
  const reader = answer.body.pipeThrough(new TextDecoderStream()).getReader();
  let timer;
  const silence = new Promise((resolve) => {
    timer = setTimeout(() => resolve({ silent: true }), FIRST_BYTES_MS);
  });
  const first = await Promise.race([reader.read(), silence]);
  clearTimeout(timer);
  if (first.silent) {
    reader.cancel().catch(() => {});
    throw new StreamUnavailable(`event stream: nothing came in ${FIRST_BYTES_MS / 1000} s`);
  }
  onOpen();
  let pending = first;
  let resumeId = lastId;
  let buffer = '';
  let message = { id: null, data: [] };
  for (;;) {
    const { value, done } = pending || await reader.read();
    pending = null;
    if (done) return resumeId;
    buffer += value;
    // A chunk may end between the \r and \n of one line end: keep a trailing \r for later.
    const cut = buffer.endsWith('\r') ? buffer.length - 1 : buffer.length;
    const lines = buffer.slice(0, cut).split(/\r\n|\r|\n/);
    buffer = lines.pop() + buffer.slice(cut);
    for (const line of lines) {
      if (line === '') {
        if (message.id !== null) resumeId = message.id;
        if (message.data.length) onEvent(JSON.parse(message.data.join('\n')));
        message = { id: null, data: [] };
      } else if (!line.startsWith(':')) {
        const colon = line.indexOf(':');
        const name = colon < 0 ? line : line.slice(0, colon);
        let field = colon < 0 ? '' : line.slice(colon + 1);
        if (field.startsWith(' ')) field = field.slice(1);
        if (name === 'data') message.data.push(field);
        else if (name === 'id' && !field.includes('\0')) message.id = field;
      }
    }
  }
}
