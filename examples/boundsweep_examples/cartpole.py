"""The CartPole task's own loop: REINFORCE (Williams 1992) with a return baseline.

Each epoch plays ``EPISODES`` episodes with the current policy, then takes one optimizer step
on the policy-gradient loss of all their steps, and reports the epoch's mean return.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch
from boundsweep.studies.training import TrialContext
from torch import nn

EPISODES = 8
GAMMA = 0.99


def run(ctx: TrialContext) -> float:
    """Train a policy for ``ctx.epochs`` epochs; the last epoch's mean return."""
    env = gym.make("CartPole-v1")
    policy = nn.Sequential(nn.Linear(4, 32), nn.Tanh(), nn.Linear(32, 2)).to(ctx.device)
    optimizer = ctx.make_optimizer(policy.parameters())
    env_seeds = ctx.rng.integers(0, 2**31, size=ctx.epochs * EPISODES)
    mean_return = 0.0
    for epoch in range(1, ctx.epochs + 1):
        observations, actions, weights, returns = [], [], [], []
        for episode in range(EPISODES):
            obs, _ = env.reset(seed=int(env_seeds[(epoch - 1) * EPISODES + episode]))
            rewards = []
            done = False
            while not done:
                with torch.no_grad():
                    logits = policy(torch.as_tensor(obs, device=ctx.device))
                if not torch.isfinite(logits).all():
                    ctx.report(epoch, float("nan"))  # diverged: ends the run
                probs = torch.softmax(logits, -1)
                action = int(torch.multinomial(probs, 1, generator=ctx.generator))
                observations.append(obs)
                actions.append(action)
                obs, reward, terminated, truncated, _ = env.step(action)
                rewards.append(float(reward))
                done = terminated or truncated
            discounted, running = [], 0.0
            for r in reversed(rewards):
                running = r + GAMMA * running
                discounted.append(running)
            weights.extend(reversed(discounted))
            returns.append(sum(rewards))
        w = torch.tensor(weights, device=ctx.device)
        w = (w - w.mean()) / (w.std() + 1e-8)
        logits = policy(torch.as_tensor(np.array(observations), device=ctx.device))
        log_probs = torch.log_softmax(logits, -1)
        taken = log_probs.gather(1, torch.tensor(actions, device=ctx.device)[:, None])[:, 0]
        loss = -(taken * w).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        mean_return = float(np.mean(returns))
        ctx.report(epoch, mean_return, train_loss=loss.item())
    env.close()
    return mean_return
