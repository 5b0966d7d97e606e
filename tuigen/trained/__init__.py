"""What a trained model is, below both training and the sampling / scoring verbs.

How a checkpoint becomes samples: `checkpoint.load` reads the file, `restore.restore` rebuilds
the network it holds (`diffusion.Trained` or `gan.TrainedGAN`, both a `protocol.TrainedModel`),
and `sampling.sample` draws images from it. `conditioning` says how labels enter a model,
`provenance` what makes two scores of samples comparable, `device` where it runs.
Training loops (experiments/) and the verbs (generate/, cli/) import this; it imports neither.
"""
