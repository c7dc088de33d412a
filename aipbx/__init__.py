"""The project's shared core: what the ARI app, the web console, the worker and the knowledge base all use.

What belongs here is code more than one process runs, with no process of its own:

* ``settings``: the ``AIPBX_*`` variables every process reads, parsed once into one typed object;
* ``errors``: ``ConfigError``;
* ``sealing`` / ``sealing_sweep``: recordings encrypted at rest; ``recordings``: a call's files;
* ``privacy``: masking and normalising personal data; ``directory``: the extension directory;
* ``logs``: structured logging with secrets and phone numbers scrubbed;
* ``providers``: speech recognition, synthesis and language models, and their factory;
* ``knowledge``: the knowledge retriever both the ARI app and the console build;
* ``audio``: pure audio (G.711, resampling, RTP packets, the VAD, utterance cutting);
* ``text``: what goes to a language model and comes back (prompt sanitising, the reply guard);
* ``queues``: the Celery task names and queues the processes send each other.

It never imports the ARI app (``ariapp``: a process), Django, the console or the Django side of the
knowledge base (pyproject's import contracts), and this file imports nothing: the Asterisk image
copies just ``directory`` and ``sealing`` beside it.
"""
