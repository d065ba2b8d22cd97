"""The file names of the generated archives: the real ones, so the demo config reads like a real
one. Kept apart from :mod:`demo.synthetic` so that parsing the workflow imports nothing heavy."""

ARCHIVE_NAMES: dict[str, str] = {
    "round1": "fashionAI_attributes_train_20180222.tar",
    "warmup": "warm_up_train_20180201.tar",
    "round2": "fashionAI_attributes_train2.zip",
    "questions": "fashionAI_attributes_test_a_20180222.tar",
}
