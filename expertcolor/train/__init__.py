"""Training scripts: ``train-expert`` (:mod:`expertcolor.train.expert`) and ``train-segmenter``
(:mod:`expertcolor.train.segmenter`), each with ``get_args_parser()`` and ``main(args)``."""
