"""The conversation engine: turn taking, replies streamed sentence by sentence, barge-in."""
