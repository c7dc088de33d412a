"""Pure audio, no sockets and no models: G.711, resampling, RTP packets, the VAD and utterance cutting.

The ARI app's media plane (``ariapp.media``) runs these on the 20 ms clock; the console cuts and
resamples recordings with the same code after the call, and the test phone speaks RTP with it.
"""
