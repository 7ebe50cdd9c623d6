import random

from sim import rng
from sim.kernel import Kernel


def test_child_seeds_are_pinned_integers_independent_of_the_process():
    # Pinned: a change here changes every simulated history.
    assert rng.child_seed(0, "scheduler") == rng.child_seed(0, "scheduler")
    assert rng.child_seed(0, "scheduler") != rng.child_seed(0, "users")
    assert rng.child_seed(0, "users") != rng.child_seed(1, "users")
    assert rng.splitmix64(0) == 0xE220A8397B1DCDAF  # the published first SplitMix64 output


def test_same_time_events_run_in_insertion_order():
    k, log = Kernel(), []
    for name in "abcde":
        k.at(5.0, log.append, name)
    k.after(0.0, log.append, "now")
    k.run(10)
    assert log == ["now", "a", "b", "c", "d", "e"]
    assert k.events == 6


def test_perturbed_ties_are_shuffled_reproducibly_and_times_still_order():
    def order(seed):
        k, log = Kernel(random.Random(seed)), []
        for i in range(8):
            k.at(5.0, log.append, i)
        k.at(1.0, log.append, "early")
        k.run(10)
        return log

    assert order(1) == order(1)
    assert order(1)[0] == "early"
    assert any(order(s)[1:] != list(range(8)) for s in range(5))
