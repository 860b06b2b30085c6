# Python 2.7: runs `wstest` exactly as the wstest script does, with one
# change: the WebSocket server binds 127.0.0.1 instead of every interface
# (autobahn's listenWS defaults to interface ''). Used by run.sh:
#
#   <venv>/bin/python fuzzingserver.py -m fuzzingserver -s spec.json --webport 0
import sys

import autobahn.twisted.websocket as websocket
import autobahntestsuite.fuzzing as fuzzing
from autobahntestsuite.wstest import run

_listen_ws = websocket.listenWS


def listen_on_loopback(factory, contextFactory=None, backlog=50, interface='127.0.0.1'):
    return _listen_ws(factory, contextFactory, backlog, interface or '127.0.0.1')


fuzzing.listenWS = listen_on_loopback

if __name__ == '__main__':
    sys.argv[0] = 'wstest'
    sys.exit(run())
