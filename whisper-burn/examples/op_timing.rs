//! Times the shapes that matter on the CPU backend (encoder convs, attention, the
//! vocabulary projection at 1 and 5 rows). `cargo run --release --example op_timing`.
use burn::prelude::*;
use burn::tensor::module::conv1d;
use burn::tensor::ops::ConvOptions;
use std::time::Instant;
use whisper_burn::backend::CpuBackend as B;

fn time<F: FnMut() -> R, R>(name: &str, reps: usize, mut f: F) {
    let _ = f();
    let t = Instant::now();
    for _ in 0..reps {
        let _ = f();
    }
    println!(
        "{name:<40} {:>9.2} ms",
        t.elapsed().as_secs_f64() * 1000.0 / reps as f64
    );
}

fn main() {
    let d = Default::default();
    let mel = Tensor::<B, 3>::random([1, 80, 3000], burn::tensor::Distribution::Default, &d);
    let w1 = Tensor::<B, 3>::random([512, 80, 3], burn::tensor::Distribution::Default, &d);
    let w2 = Tensor::<B, 3>::random([512, 512, 3], burn::tensor::Distribution::Default, &d);
    let x = Tensor::<B, 3>::random([1, 512, 3000], burn::tensor::Distribution::Default, &d);
    time("conv1 80->512 k3 x3000", 3, || {
        conv1d(
            mel.clone(),
            w1.clone(),
            None,
            ConvOptions::new([1], [1], [1], 1),
        )
        .into_data()
    });
    time("conv2 512->512 k3 s2 x3000", 3, || {
        conv1d(
            x.clone(),
            w2.clone(),
            None,
            ConvOptions::new([2], [1], [1], 1),
        )
        .into_data()
    });
    let a = Tensor::<B, 2>::random([1500, 512], burn::tensor::Distribution::Default, &d);
    let w = Tensor::<B, 2>::random([512, 512], burn::tensor::Distribution::Default, &d);
    let wf = Tensor::<B, 2>::random([512, 2048], burn::tensor::Distribution::Default, &d);
    time("1500x512 @ 512x512", 5, || {
        a.clone().matmul(w.clone()).into_data()
    });
    time("1500x512 @ 512x2048", 5, || {
        a.clone().matmul(wf.clone()).into_data()
    });
    let q = Tensor::<B, 4>::random([1, 8, 1500, 64], burn::tensor::Distribution::Default, &d);
    time("scores q@kT 8x1500x64", 3, || {
        q.clone().matmul(q.clone().swap_dims(2, 3)).into_data()
    });
    let s = Tensor::<B, 4>::random([1, 8, 1500, 1500], burn::tensor::Distribution::Default, &d);
    time("softmax 8x1500x1500", 3, || {
        burn::tensor::activation::softmax(s.clone(), 3).into_data()
    });
    time("manual softmax 8x1500x1500", 3, || {
        manual_softmax(s.clone()).into_data()
    });
    let kt = q.clone().swap_dims(2, 3).into_data();
    let kt = Tensor::<B, 4>::from_data(kt, &d);
    time("scores q@kT contiguous", 3, || {
        q.clone().matmul(kt.clone()).into_data()
    });
    let q3 = Tensor::<B, 3>::random([8, 1500, 64], burn::tensor::Distribution::Default, &d);
    let k3 = Tensor::<B, 3>::random([8, 64, 1500], burn::tensor::Distribution::Default, &d);
    time("scores 3d contiguous", 3, || {
        q3.clone().matmul(k3.clone()).into_data()
    });
    let q2 = Tensor::<B, 2>::random([1500, 64], burn::tensor::Distribution::Default, &d);
    let k2 = Tensor::<B, 2>::random([64, 1500], burn::tensor::Distribution::Default, &d);
    time("scores 2d x8", 3, || {
        for _ in 0..8 {
            q2.clone().matmul(k2.clone()).into_data();
        }
    });
    let s2 = Tensor::<B, 2>::random([1500, 1500], burn::tensor::Distribution::Default, &d);
    time("softmax 2d 1500x1500 x8", 3, || {
        for _ in 0..8 {
            burn::tensor::activation::softmax(s2.clone(), 1).into_data();
        }
    });
    time("exp 8x1500x1500", 3, || s.clone().exp().into_data());
    time("max_dim 8x1500x1500", 3, || {
        s.clone().max_dim(3).into_data()
    });
    time("host softmax 8x1500x1500", 3, || {
        let v = s.clone().into_data().to_vec::<f32>().unwrap();
        let mut v = v;
        v.chunks_mut(1500).for_each(|r| {
            let m = r.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
            let mut z = 0.0;
            for x in r.iter_mut() {
                *x = (*x - m).exp();
                z += *x;
            }
            let iz = 1.0 / z;
            r.iter_mut().for_each(|x| *x *= iz);
        });
        Tensor::<B, 4>::from_data(TensorData::new(v, [1, 8, 1500, 1500]), &d)
    });
    time("probs@v", 3, || s.clone().matmul(q.clone()).into_data());
    let g = Tensor::<B, 3>::random([1, 1500, 2048], burn::tensor::Distribution::Default, &d);
    time("gelu 1500x2048", 5, || {
        burn::tensor::activation::gelu(g.clone()).into_data()
    });
    time("var_mean 1500x512", 5, || {
        g.clone().var_mean_bias(2).0.into_data()
    });
    let h = Tensor::<B, 2>::random([1, 512], burn::tensor::Distribution::Default, &d);
    let h5 = Tensor::<B, 2>::random([5, 512], burn::tensor::Distribution::Default, &d);
    let v = Tensor::<B, 2>::random([512, 51865], burn::tensor::Distribution::Default, &d);
    let vt = Tensor::<B, 2>::random([51865, 512], burn::tensor::Distribution::Default, &d);
    time("1x512 @ 512x51865", 10, || {
        h.clone().matmul(v.clone()).into_data()
    });
    time("5x512 @ 512x51865", 10, || {
        h5.clone().matmul(v.clone()).into_data()
    });
    time("1x512 @ (51865x512)^T", 10, || {
        h.clone().matmul(vt.clone().transpose()).into_data()
    });
    time("5x512 @ (51865x512)^T", 10, || {
        h5.clone().matmul(vt.clone().transpose()).into_data()
    });
}

#[allow(dead_code)]
fn manual_softmax(x: Tensor<B, 4>) -> Tensor<B, 4> {
    let m = x.clone().max_dim(3);
    let e = (x - m).exp();
    let s = e.clone().sum_dim(3);
    e / s
}
