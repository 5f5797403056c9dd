"""The learner side: loading episodes from the store into replay, pre-training and the learner service."""
