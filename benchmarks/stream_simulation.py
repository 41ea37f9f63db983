"""Stream simulation: N synthetic streams on 1 and 2 Ray actors, frames/s and latency percentiles.

Same as ``fmtrack bench streams [--streams N --frames F --actors 1 2 --presets bytetrack deepsort]``
(fmtrack/scale/simulation.py says what is replayed and how latency is measured). Needs fmtrack[ray].
"""

import sys

from fmtrack.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", "streams", *sys.argv[1:]]))
