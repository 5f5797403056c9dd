"""Success classifiers that turn camera frames (+ a task instruction) into a success probability.

Must not import ROS or `hardware`.
"""
