"""A video pipeline: OpenCV capture -> detections -> fmtrack.VideoTracker -> annotated mp4.

    python examples/video_pipeline.py VIDEO DET_TXT OUT_MP4 [--results RES_TXT] [--detector dpm]

No detector ships with fmtrack, so this example reads the video's detections from a MOTChallenge
det.txt (frame,-1,left,top,width,height,score,...; frames numbered from 1): in your own pipeline,
call your detector on each frame where ``detections.at`` is called below.
"""

import argparse
from pathlib import Path

import cv2

import fmtrack
from fmtrack.io import read_detections, write_results
from fmtrack.scores import guess_detector
from fmtrack.video import TrackRenderer

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("video", help="video file")
parser.add_argument("det", help="MOTChallenge det.txt of that video")
parser.add_argument("out", help="annotated video (.mp4)")
parser.add_argument("--results", help="also write the tracks as a MOTChallenge result file")
parser.add_argument("--detector", help="score map of the detector (e.g. dpm, frcnn); default: from the scores' "
                                        "range, as fmtrack run picks it")
args = parser.parse_args()

capture = cv2.VideoCapture(args.video)
if not capture.isOpened():
    raise SystemExit(f"{args.video}: not a video OpenCV can open")
fps = capture.get(cv2.CAP_PROP_FPS)
fps = fps if fps > 0 else 30.0  # a source that states no frame rate
size = (int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)))
detections = read_detections(args.det)
# A stream cannot see its future scores; this file can, so pick the score map as `fmtrack run` does
# (from the whole file's range) unless --detector names it.
detector = args.detector or guess_detector(Path(args.video).stem, detections.scores)
tracker = fmtrack.VideoTracker("fmtrack", detector=detector, frame_rate=fps)  # the default descriptor
rows = []
with TrackRenderer(args.out, fps, size, inputs=[args.video, args.det]) as renderer:
    frame_index = 0
    while True:
        ok, frame = capture.read()  # (H, W, 3) uint8 BGR
        if not ok:
            break
        frame_index += 1
        boxes, scores, _ = detections.at(frame_index)  # (N, 4) tlwh pixels, (N,): your detector here
        tracks = tracker.update(frame, boxes, scores)
        renderer.write(renderer.draw(frame, tracks, frame_index))
        rows += [(frame_index, track.track_id, *track.tlwh) for track in tracks]
capture.release()
if args.results:
    write_results(args.results, rows)
print(f"{frame_index} frames, {len({row[1] for row in rows})} tracks -> {args.out}")
