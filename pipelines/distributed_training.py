"""Distributed training: a small torch model trained by 2 processes with DistributedDataParallel.

Locally the ``@train`` step runs as two processes wired as a torch.distributed
job (gloo on CPU, nccl with one GPU each when GPUs are visible); on a cluster
it is a Kubeflow Trainer TrainJob with two nodes. Each rank trains on its
shard of scikit-learn's bundled breast-cancer data; gradients are averaged by
DDP; rank 0 writes the model. Needs the torch extra
(``pip install 'workbench-dsl[torch]'``).

    workbench run pipelines/distributed_training.py -p epochs=20
"""

from workbench_dsl import Dataset, Input, Metrics, Model, Output, develop, pipeline, train


@develop(preset="sklearn")
def load_data(test_size: float, data: Output[Dataset], holdout: Output[Dataset]):
    """Split and standardise the bundled breast-cancer dataset."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split

    frame = load_breast_cancer(as_frame=True).frame
    features = frame.drop(columns=["target"])
    frame[features.columns] = (features - features.mean()) / features.std()
    train_part, test_part = train_test_split(frame, test_size=test_size, random_state=0)
    train_part.to_csv(data.path, index=False)
    test_part.to_csv(holdout.path, index=False)


@train(nodes=2, procs_per_node=1, preset="torch")
def fit(data: Input[Dataset], epochs: int, lr: float, model: Output[Model]) -> float:
    """Train a small MLP with DDP; every rank sees its own shard of the rows."""
    import pandas as pd
    import torch
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    rank, world = dist.get_rank(), dist.get_world_size()
    torch.manual_seed(0)
    frame = pd.read_csv(data.path)
    shard = frame.iloc[rank::world]
    X = torch.tensor(shard.drop(columns=["target"]).to_numpy(), dtype=torch.float32)
    y = torch.tensor(shard["target"].to_numpy(), dtype=torch.float32).unsqueeze(1)
    net = torch.nn.Sequential(
        torch.nn.Linear(X.shape[1], 16), torch.nn.ReLU(), torch.nn.Linear(16, 1)
    )
    ddp = DistributedDataParallel(net)
    opt = torch.optim.SGD(ddp.parameters(), lr=lr)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    loss = torch.tensor(0.0)
    for epoch in range(epochs):
        opt.zero_grad()
        loss = loss_fn(ddp(X), y)
        loss.backward()  # DDP all-reduces the gradients across ranks here
        opt.step()
        if rank == 0 and (epoch + 1) % 5 == 0:
            print(f"epoch {epoch + 1}: loss {loss.item():.4f}")
    mean_loss = loss.detach().clone()
    dist.all_reduce(mean_loss)
    mean_loss /= world
    if rank == 0:
        torch.save(net.state_dict(), model.path)
        model.metadata.update({"framework": "torch", "world_size": world})
    return float(mean_loss.item())


@develop(preset="torch")
def evaluate(model: Input[Model], holdout: Input[Dataset], metrics: Output[Metrics]) -> float:
    """Accuracy of the trained network on the held-out split."""
    import pandas as pd
    import torch

    frame = pd.read_csv(holdout.path)
    X = torch.tensor(frame.drop(columns=["target"]).to_numpy(), dtype=torch.float32)
    y = torch.tensor(frame["target"].to_numpy(), dtype=torch.float32).unsqueeze(1)
    net = torch.nn.Sequential(
        torch.nn.Linear(X.shape[1], 16), torch.nn.ReLU(), torch.nn.Linear(16, 1)
    )
    net.load_state_dict(torch.load(model.path))
    with torch.no_grad():
        accuracy = float(((net(X) > 0).float() == y).float().mean().item())
    metrics.log_metric("accuracy", accuracy)
    return accuracy


@pipeline(name="distributed-training")
def distributed_training(test_size: float = 0.25, epochs: int = 30, lr: float = 0.5) -> float:
    """Load data, train with two processes, evaluate."""
    data = load_data(test_size=test_size)
    model = fit(data=data.outputs["data"], epochs=epochs, lr=lr)
    scores = evaluate(model=model.outputs["model"], holdout=data.outputs["holdout"])
    return scores.outputs["Output"]
