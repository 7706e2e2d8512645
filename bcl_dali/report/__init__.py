"""What people look at: figures and report pages of run directories, and the picture of the
augmentation at several BCL weights (`show`).

May import bcl_dali.eval (the Evaluation type), runs, data, policy and the layers below;
not training or the use cases.
"""
