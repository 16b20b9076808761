"""PyTorch reference for bench/train.ts: the same MLP, optimizer, batch size and data, timed the same way.

Like aiaas, every step also computes the batch's loss and accuracy into running sums (without a sync
to Python per step, as aiaas reads them back per chunk of steps), and each epoch is timed on its own,
so the caller can compare the same epochs (bench/README.md).

Usage: /usr/bin/python3 bench/torch_mlp.py THREADS EPOCHS [IMAGES.gz LABELS.gz]
Prints one JSON object. Run only as a benchmark baseline, never as part of aiaas.
"""
import gzip
import json
import struct
import sys
import time

import numpy as np
import torch


def read_idx(path):
    with gzip.open(path, "rb") as handle:
        data = handle.read()
    magic = struct.unpack(">I", data[:4])[0]
    rank = magic & 0xFF
    dims = struct.unpack(">" + "I" * rank, data[4 : 4 + 4 * rank])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * rank).reshape(dims)


def main():
    threads = int(sys.argv[1])
    epochs = int(sys.argv[2])
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    if len(sys.argv) > 4:
        images = torch.from_numpy(read_idx(sys.argv[3]).astype(np.float32) / 255.0).reshape(-1, 784)
        labels = torch.from_numpy(read_idx(sys.argv[4]).astype(np.int64))
    else:
        generator = torch.Generator().manual_seed(1)
        images = torch.rand(60000, 784, generator=generator)
        labels = torch.randint(0, 10, (60000,), generator=generator)
    model = torch.nn.Sequential(
        torch.nn.Linear(784, 128), torch.nn.ReLU(), torch.nn.Dropout(0.2), torch.nn.Linear(128, 10)
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
    loss_function = torch.nn.CrossEntropyLoss()
    count = images.shape[0]
    batch = 128
    epoch_seconds = []
    accuracy = 0.0
    for _ in range(epochs):
        start = time.perf_counter()
        order = torch.randperm(count)
        loss_sum = torch.zeros(())
        correct = torch.zeros((), dtype=torch.int64)
        for begin in range(0, count, batch):
            index = order[begin : begin + batch]
            optimizer.zero_grad(set_to_none=True)
            logits = model(images[index])
            loss = loss_function(logits, labels[index])
            loss.backward()
            optimizer.step()
            with torch.no_grad():
                loss_sum += loss.detach() * index.shape[0]
                correct += (logits.argmax(dim=1) == labels[index]).sum()
        accuracy = float(correct) / count
        epoch_seconds.append(time.perf_counter() - start)
    print(
        json.dumps(
            {
                "threads": torch.get_num_threads(),
                "epochSeconds": epoch_seconds,
                "samplesPerEpoch": count,
                "finalLoss": float(loss_sum) / count,
                "trainAccuracy": accuracy,
            }
        )
    )

main()
