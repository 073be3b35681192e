"""Training: the commands that rebuild the shipped models in ``rag/models/`` from the SQuAD articles.

``reader`` (the sentence ranker and the gate; ``forumqa train-reader``) and ``grounding`` (the grounding
check; ``python -m rag.train.grounding``). May import any stage.
"""
