"""One module per kind of trigger, all framework-free: ``events`` (Event Grid), ``queue`` (work items and
their poison queue), ``timer`` (the sweep) and ``http`` (the HTTP API), sharing one delivery policy
(``delivery``: the inline budget, the hand-over to the work queue, the wait clamp). ``function_app.py``
decodes a trigger's input, calls one handler here and encodes the result."""
