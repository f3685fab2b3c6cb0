from kira.retriever.text import exact_match, f1_score, has_answer, normalize_answer


def test_normalize_answer_squad_rules():
    assert normalize_answer("The  Danube!") == "danube"
    assert normalize_answer("An apple, a pear and THE plum.") == "apple pear and plum"
    assert normalize_answer("  Mozart's  ") == "mozarts"
    assert normalize_answer("theatre") == "theatre"  # articles only as whole words


def test_has_answer_token_boundaries():
    text = "The Danube flows through Vienna in 1990."
    assert has_answer(["danube"], text)
    assert has_answer(["the Danube", "Rhine"], text)
    assert has_answer(["Vienna."], text)
    assert not has_answer(["199"], text)  # no match inside a token
    assert not has_answer(["Rhine", ""], text)
    assert not has_answer([], text)


def test_em_and_f1():
    assert exact_match("the Danube", ["Danube river", "danube"])
    assert not exact_match("Danube river", ["danube"])
    assert f1_score("Danube river", ["danube"]) == 2 * (0.5 * 1.0) / 1.5
    assert f1_score("", [""]) == 1.0
    assert f1_score("x", ["y"]) == 0.0
