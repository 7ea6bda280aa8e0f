"""Word-level LSTM language model for Penn Treebank (1, 2 or 3 layers)."""

from __future__ import annotations

import torch
from torch import nn

Hidden = list[tuple[torch.Tensor, torch.Tensor]]


class LSTMLanguageModel(nn.Module):
    """Embedding -> stacked LSTM -> decoder tied to the embedding.

    Sizes follow AWD-LSTM (Merity et al. 2018), on which the public AdaBelief reproduction of
    these experiments is built: embedding 400, hidden 1150, and the last layer's hidden size
    equal to the embedding so the decoder can share the embedding's weights. Dropout on the
    embedded input (0.4), between layers (0.25) and on the output (0.4), as that reproduction's
    ``dropouti``/``dropouth``/``dropout``; its weight-drop and embedding dropout are left out.

    Args:
        vocab_size: Words in the vocabulary.
        layers: LSTM layers (1, 2, 3).
        embedding: Embedding size (and the last layer's hidden size).
        hidden: Hidden size of every layer but the last.
    """

    def __init__(
        self,
        vocab_size: int,
        layers: int,
        embedding: int = 400,
        hidden: int = 1150,
        dropout_input: float = 0.4,
        dropout_hidden: float = 0.25,
        dropout_output: float = 0.4,
    ) -> None:
        super().__init__()
        self.encoder = nn.Embedding(vocab_size, embedding)
        sizes = [embedding] + [hidden] * (layers - 1) + [embedding]
        self.rnns = nn.ModuleList(
            nn.LSTM(sizes[i], sizes[i + 1], batch_first=False) for i in range(layers)
        )
        self.drop_input = nn.Dropout(dropout_input)
        self.drop_hidden = nn.Dropout(dropout_hidden)
        self.drop_output = nn.Dropout(dropout_output)
        self.decoder = nn.Linear(embedding, vocab_size)
        self.decoder.weight = self.encoder.weight
        nn.init.uniform_(self.encoder.weight, -0.1, 0.1)
        nn.init.zeros_(self.decoder.bias)

    def forward(self, tokens: torch.Tensor, state: Hidden | None) -> tuple[torch.Tensor, Hidden]:
        """Logits (T, B, vocab) for tokens (T, B), and the new per-layer (h, c) state."""
        out = self.drop_input(self.encoder(tokens))
        new_state: Hidden = []
        for i, rnn in enumerate(self.rnns):
            out, hc = rnn(out, None if state is None else state[i])
            new_state.append(hc)
            out = self.drop_hidden(out) if i < len(self.rnns) - 1 else self.drop_output(out)
        return self.decoder(out), new_state
