"""Running experiments: the launcher, the worker, the queue, the reaper and system sampling.

Never imports textual; torch only inside the worker process (context, checkpoint).
"""
