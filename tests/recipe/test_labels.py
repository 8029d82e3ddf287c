from empathy_recipe import labels

import empathy_data.core.labels as corpus_labels


def test_every_corpus_label_is_mapped_value_by_value():
    assert labels.OSUM_EMOTION == {
        "neutral": "NEUTRAL", "happy": "HAPPY", "sad": "SAD", "angry": "ANGRY", "fearful": "FEAR",
        "surprised": "SURPRISE", "disgusted": "DISGUST",
    }  # fmt: skip
    assert labels.OSUM_AGE == {"child": "CHILD", "teen": "ADULT", "young_adult": "ADULT", "adult": "ADULT", "elderly": "OLD"}
    assert labels.OSUM_GENDER == {"female": "FEMALE", "male": "MALE"}
    assert labels.BLSP_EMO_EMOTION == {
        "neutral": "neutral", "happy": "happy", "angry": "angry", "sad": "sad", "surprised": "surprise",
        "fearful": None, "disgusted": None,
    }  # fmt: skip
    assert [labels.osum_tag(v) for v in ("CHILD", "ADULT", "OLD", "MALE", "FEMALE", "SAD")] == [
        "<CHILD>", "<ADULT>", "<OLD>", "<MALE>", "<FEMALE>", "<SAD>"]  # fmt: skip


def test_maps_cover_the_corpus_vocabulary_and_live_only_here():
    for m in (labels.OSUM_EMOTION, labels.BLSP_EMO_EMOTION):
        assert set(m) == set(corpus_labels.EMOTIONS)
    assert set(labels.OSUM_AGE) == set(corpus_labels.AGE_GROUPS)
    assert set(labels.OSUM_GENDER) == set(corpus_labels.GENDERS)
    assert {v for v in labels.BLSP_EMO_EMOTION.values() if v} == set(labels.BLSP_EMO_CLASSES)
    for name in ("OSUM_EMOTION", "OSUM_AGE", "OSUM_GENDER", "BLSP_EMO_EMOTION"):
        assert not hasattr(corpus_labels, name)
