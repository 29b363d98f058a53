"""Recording OpenAI-compatible server for the evalscope differential suite (127.0.0.1 only).

Answers every chat completion with the scripted response of the synthetic GPQA question found in the prompt
("(Synthetic item N, ..." -> responses.RESPONSES[N - 1]), whichever tool asks and whatever the option order, and
appends each request body to --record (one JSON object a line). Streams when the request asks for it.
Usage: python server.py --record FILE --port-file FILE
"""
import argparse
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from responses import RESPONSES

ITEM = re.compile(r'\(Synthetic item (\d+),')
LOCK = threading.Lock()


def response_for(body):
    text = ''.join(m.get('content') or '' for m in body.get('messages', []) if isinstance(m.get('content'), str))
    m = ITEM.search(text)
    if not m:
        return 'no synthetic item in this prompt'
    return RESPONSES[(int(m.group(1)) - 1) % len(RESPONSES)]


class Handler(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    record = None

    def log_message(self, *args):
        pass

    def _send(self, code, ctype, payload):
        data = payload.encode('utf-8')
        self.send_response(code)
        self.send_header('Content-Type', ctype)
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path.rstrip('/').endswith('/models'):
            self._send(200, 'application/json', json.dumps({'object': 'list', 'data': [{'id': 'recorded', 'object': 'model'}]}))
        else:
            self._send(404, 'application/json', json.dumps({'error': {'message': 'not found'}}))

    def do_POST(self):
        n = int(self.headers.get('Content-Length') or 0)
        body = json.loads(self.rfile.read(n) or b'{}')
        with LOCK:
            with open(Handler.record, 'a', encoding='utf-8') as f:
                f.write(json.dumps(body, ensure_ascii=False) + '\n')
        content = response_for(body)
        usage = {'prompt_tokens': 10, 'completion_tokens': max(1, len(content) // 4), 'total_tokens': 10 + max(1, len(content) // 4)}
        base = {'id': 'cmpl-rec', 'created': 0, 'model': body.get('model', 'recorded')}
        if body.get('stream'):
            events = [
                dict(base, object='chat.completion.chunk',
                     choices=[{'index': 0, 'delta': {'role': 'assistant', 'content': content}, 'finish_reason': None}]),
                dict(base, object='chat.completion.chunk', choices=[{'index': 0, 'delta': {}, 'finish_reason': 'stop'}]),
                dict(base, object='chat.completion.chunk', choices=[], usage=usage),
            ]
            payload = ''.join(f'data: {json.dumps(e)}\n\n' for e in events) + 'data: [DONE]\n\n'
            self._send(200, 'text/event-stream', payload)
        else:
            out = dict(base, object='chat.completion', usage=usage, choices=[{
                'index': 0, 'message': {'role': 'assistant', 'content': content}, 'finish_reason': 'stop'}])
            self._send(200, 'application/json', json.dumps(out))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--record', required=True)
    ap.add_argument('--port-file', required=True)
    a = ap.parse_args()
    Handler.record = a.record
    srv = ThreadingHTTPServer(('127.0.0.1', 0), Handler)
    with open(a.port_file, 'w') as f:
        f.write(str(srv.server_address[1]))
    srv.serve_forever()


if __name__ == '__main__':
    main()
