"""play_episodes: the one loop that plays episodes one by one (watch, play)."""

import gymnasium as gym
import pytest

import neg_envs  # noqa: F401
from neg_envs import collision_core as core
from neg_envs.episodes import Episode, EpisodeStats, play_episodes


def test_episodes_are_seeded_one_by_one_and_counted_from_the_info():
    env = gym.make("NegCollision-v0", num_obstacles=30)
    frames = []
    played = list(
        play_episodes(
            env, lambda obs: core.UP, 2, seed=7, max_steps=40, on_state=lambda: frames.append(1)
        )
    )
    assert len(frames) == 2 * 41  # after each reset and each step
    for k, episode in enumerate(played):
        env.reset(seed=7 + k)
        expected = Episode()
        for _ in range(40):
            _, reward, _, _, info = env.step(core.UP)
            expected.record(reward, info)
        assert episode == expected and episode.moves == episode.steps == 40
    stats = EpisodeStats()
    for episode in played:
        stats.add(episode)
    assert stats.summary()["episode_length"] == 40.0


def test_playing_stops_when_the_actor_says_so():
    env = gym.make("NegCollision-v0")
    actions = iter([core.STAY] * 3 + [None])
    assert list(play_episodes(env, lambda obs: next(actions), 5)) == []
    with pytest.raises(
        ValueError, match=r"episodes must be an integer in \[1, 1000000000\], got 0"
    ):
        list(play_episodes(env, lambda obs: core.STAY, 0))
