"""Can k copies of the digits CNN train faster as one vectorised network than side by side?

    python -m benchmarks.vectorized_copies [--copies 5] [--steps 50] [--repeats 3]

The engine (src/train/engine.py) trains a job's folds as k separate copies of the network in one
traced program. The alternative is one wider network whose ops carry the copy as a dimension,
so that each op runs once for all copies. Three ways to write one training step of k copies of
conf/model/cnn.yaml (Conv2D 32 and 64, 3x3, max-pooling, Dense 128, Dense 10; batch 64 of 8x8
images each; plain SGD, so only the network's arithmetic is compared), each a tf.function:

- separate: k convolutional networks side by side in one function (what the engine does);
- grouped: the copies' channels stacked, one Conv2D with `groups`-style filters (input channels
  = k x the filter's): TensorFlow's CPU kernels may refuse its gradient, which is reported;
- im2col: each convolution as patches (`tf.image.extract_patches`) times a batched weight
  (`einsum` over the copy dimension), dense layers as batched matmuls.

Reported: milliseconds per step (all k copies), median over repeats, the variants alternating,
in one process. Results: benchmarks/results/vectorized_copies.{json,md}.
"""

from __future__ import annotations

import argparse
import statistics
import time

BATCH, SIDE, CLASSES = 64, 8, 10


def variants(k: int):
    import tensorflow as tf

    rng = tf.random.Generator.from_seed(0)
    x = rng.normal((k, BATCH, SIDE, SIDE, 1))
    y = rng.uniform((k, BATCH), 0, CLASSES, tf.int32)

    def weights(shape, scale):
        return tf.Variable(rng.normal(shape) * scale)

    def sgd(variables, loss_fn):
        with tf.GradientTape() as tape:
            loss = loss_fn()
        for v, g in zip(variables, tape.gradient(loss, variables), strict=True):
            v.assign_sub(0.001 * g)
        return loss

    def xent(labels, logits):
        return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits))

    def pool(h):
        return tf.nn.max_pool2d(h, 2, 2, "VALID")

    # separate copies
    sep = [
        [
            weights((3, 3, 1, 32), 0.1),
            weights((3, 3, 32, 64), 0.05),
            weights((256, 128), 0.05),
            weights((128, CLASSES), 0.05),
        ]  # fmt: skip
        for _ in range(k)
    ]

    def net(w, xi):
        h = pool(tf.nn.relu(tf.nn.conv2d(xi, w[0], 1, "SAME")))
        h = pool(tf.nn.relu(tf.nn.conv2d(h, w[1], 1, "SAME")))
        h = tf.nn.relu(tf.reshape(h, (BATCH, -1)) @ w[2])
        return h @ w[3]

    @tf.function
    def separate():
        flat = [v for w in sep for v in w]
        return sgd(flat, lambda: tf.add_n([xent(y[i], net(sep[i], x[i])) for i in range(k)]))

    # grouped convolution: copies stacked on the channel axis
    grp = [weights((3, 3, 1, 32 * k), 0.1), weights((3, 3, 32, 64 * k), 0.05),
           weights((k, 256, 128), 0.05), weights((k, 128, CLASSES), 0.05)]  # fmt: skip
    stacked = tf.reshape(tf.transpose(x, (1, 2, 3, 0, 4)), (BATCH, SIDE, SIDE, k))

    def grouped_loss():
        h = pool(tf.nn.relu(tf.nn.conv2d(stacked, grp[0], 1, "SAME")))
        h = pool(tf.nn.relu(tf.nn.conv2d(h, grp[1], 1, "SAME")))
        h = tf.reshape(
            tf.transpose(tf.reshape(h, (BATCH, 4, k, 64)), (2, 0, 1, 3)), (k, BATCH, 256)
        )
        h = tf.nn.relu(tf.einsum("kbi,kio->kbo", h, grp[2]))
        logits = tf.einsum("kbi,kio->kbo", h, grp[3])
        return tf.reduce_sum([xent(y[i], logits[i]) for i in range(k)])

    @tf.function
    def grouped():
        return sgd(grp, grouped_loss)

    # im2col: patches times batched weights
    col = [weights((k, 9, 32), 0.1), weights((k, 9 * 32, 64), 0.05),
           weights((k, 256, 128), 0.05), weights((k, 128, CLASSES), 0.05)]  # fmt: skip

    def conv(h, w):
        kk, b, hh, ww, c = h.shape
        p = tf.image.extract_patches(
            tf.reshape(h, (kk * b, hh, ww, c)), [1, 3, 3, 1], [1, 1, 1, 1], [1, 1, 1, 1], "SAME"
        )
        return tf.einsum("kbhwp,kpo->kbhwo", tf.reshape(p, (kk, b, hh, ww, 9 * c)), w)

    def kpool(h):
        kk, b, hh, ww, c = h.shape
        return tf.reshape(pool(tf.reshape(h, (kk * b, hh, ww, c))), (kk, b, hh // 2, ww // 2, c))

    def im2col_loss():
        h = kpool(tf.nn.relu(conv(x, col[0])))
        h = kpool(tf.nn.relu(conv(h, col[1])))
        h = tf.nn.relu(tf.einsum("kbi,kio->kbo", tf.reshape(h, (k, BATCH, 256)), col[2]))
        logits = tf.einsum("kbi,kio->kbo", h, col[3])
        return tf.reduce_sum([xent(y[i], logits[i]) for i in range(k)])

    @tf.function
    def im2col():
        return sgd(col, im2col_loss)

    return {"separate": separate, "grouped": grouped, "im2col": im2col}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=5)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    from benchmarks.machine import write

    steps = variants(args.copies)
    errors: dict[str, str] = {}
    for name, step in list(steps.items()):
        try:
            step().numpy()  # traces; a kernel that cannot run fails here
        except Exception as err:  # noqa: BLE001 - the refusal is the result
            lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
            kernel = [ln for ln in lines if "does not" in ln or "not supported" in ln]
            errors[name] = (kernel or lines)[0][:240]  # the kernel's own message
            del steps[name]
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(args.repeats):
        for name, step in steps.items():
            start = time.perf_counter()
            for _ in range(args.steps):
                step()
            step().numpy()
            times[name].append((time.perf_counter() - start) / (args.steps + 1) * 1000)
    median = {name: statistics.median(t) for name, t in times.items()}
    rows = [f"| {n} | {median[n]:.1f} | {median[n] / median['separate']:.2f} |" for n in median]
    rows += [f"| {n} | failed: {e} | |" for n, e in errors.items()]
    markdown = (
        "# k copies of the digits CNN: separate against vectorised\n\n"
        f"`python -m benchmarks.vectorized_copies --copies {args.copies} --steps {args.steps} "
        f"--repeats {args.repeats}`: one SGD step of {args.copies} copies, batch {BATCH} each, "
        f"median of {args.repeats} runs of {args.steps} steps.\n\n"
        "| variant | ms per step (all copies) | vs separate |\n|---|---|---|\n"
        + "\n".join(rows)
        + "\n"
    )
    write("vectorized_copies", {"args": vars(args), "ms_per_step": times, "errors": errors},
          markdown)  # fmt: skip
    print(markdown)


if __name__ == "__main__":
    main()
