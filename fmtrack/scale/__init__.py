"""Past one process: many sequences as Ray tasks, many live streams as Ray actors.

Ray is the optional extra ``fmtrack[ray]``; nothing here imports it until a function needs it.

- :func:`fmtrack.scale.videos.run_methods_parallel`: ``fmtrack eval --workers N`` (method x sequence
  cells as Ray tasks, the same files and table as :func:`fmtrack.benchmarks.evaluate.run_methods`).
- :mod:`fmtrack.scale.streams`: :class:`StreamShard` (the trackers of a shard of stream ids, a Ray
  actor) and :class:`StreamRouter` (stream id -> actor by a stable hash; ``move`` by snapshot/restore).
- :mod:`fmtrack.scale.simulation`: ``fmtrack bench streams``, synthetic streams replayed from the
  bundled sequences' detections.
"""
