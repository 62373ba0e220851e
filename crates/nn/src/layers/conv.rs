//! Convolution and pooling over `[batch, channels, height, width]`: `Conv2d` (im2col + GEMM in
//! nabla-core, stride, padding, dilation, groups), `MaxPool2d`, `AvgPool2d`, `GlobalAvgPool2d`, and
//! `Reshape` to give a flat input its image shape.

use crate::init::Init;
use crate::module::{Ctx, Module, VarKind};
use nabla_core::{Conv2dOptions, DType, Error, Pool2dOptions, Result, Rng, Tensor, Var};

/// `y = w ⋆ x + b` with `w: [out, in / groups, kh, kw]` (PyTorch's layout and names); output
/// side `(side + 2·padding − dilation·(k − 1) − 1) / stride + 1`.
pub struct Conv2d {
    weight: Var,
    bias: Option<Var>,
    options: Conv2dOptions,
}

/// Options for a [`Conv2d`]: kernel, stride, padding, dilation, groups, bias, initializers,
/// dtype.
#[derive(Debug, Clone)]
pub struct Conv2dBuilder {
    in_channels: usize,
    out_channels: usize,
    kernel: [usize; 2],
    options: Conv2dOptions,
    bias: bool,
    init: Init,
    bias_init: Init,
    dtype: DType,
}

impl Conv2dBuilder {
    /// Stride per axis `[h, w]` (default 1).
    pub fn stride(mut self, stride: [usize; 2]) -> Self {
        self.options.stride = stride;
        self
    }
    /// Zero padding per axis (default 0).
    pub fn padding(mut self, padding: [usize; 2]) -> Self {
        self.options.padding = padding;
        self
    }
    /// Dilation per axis (default 1).
    pub fn dilation(mut self, dilation: [usize; 2]) -> Self {
        self.options.dilation = dilation;
        self
    }
    /// Channel groups (default 1): the input channels and the filters are split into this many
    /// groups, each filter reading only its group's channels (`in_channels` groups: depthwise).
    /// Both channel counts must be multiples of it.
    pub fn groups(mut self, groups: usize) -> Self {
        self.options.groups = groups;
        self
    }
    weight_options!("He normal: variance 2 / (in · kh · kw), for ReLU");

    /// Draws the initial parameters from `rng`.
    pub fn build(self, rng: &mut Rng) -> Result<Conv2d> {
        let [kh, kw] = self.kernel;
        if self.in_channels == 0 || self.out_channels == 0 || kh == 0 || kw == 0 {
            return Err(Error::invalid(
                "Conv2d",
                format!(
                    "channels and kernel must be positive, got {} -> {} channels, kernel {kh}x{kw}",
                    self.in_channels, self.out_channels
                ),
            ));
        }
        let o = &self.options;
        if o.stride.contains(&0) || o.dilation.contains(&0) {
            return Err(Error::invalid(
                "Conv2d",
                format!(
                    "stride and dilation must be positive, got {:?} and {:?}",
                    o.stride, o.dilation
                ),
            ));
        }
        let groups = o.groups;
        if groups == 0
            || !self.in_channels.is_multiple_of(groups)
            || !self.out_channels.is_multiple_of(groups)
        {
            return Err(Error::invalid(
                "Conv2d",
                format!(
                    "groups = {groups} must divide both channel counts ({} -> {})",
                    self.in_channels, self.out_channels
                ),
            ));
        }
        // Each filter reads in / groups channels: the fan-in the initializers see.
        let weight = self.init.tensor(
            [self.out_channels, self.in_channels / groups, kh, kw],
            self.dtype,
            rng,
        )?;
        let bias = self.make_bias(self.out_channels, rng)?;
        Ok(Conv2d {
            weight: Var::new(&weight)?,
            bias,
            options: self.options,
        })
    }
}

impl Conv2d {
    /// Options for a `in_channels -> out_channels` convolution with a `kernel` window.
    pub fn builder(in_channels: usize, out_channels: usize, kernel: [usize; 2]) -> Conv2dBuilder {
        Conv2dBuilder {
            in_channels,
            out_channels,
            kernel,
            options: Conv2dOptions::default(),
            bias: true,
            init: Init::KaimingNormal {
                negative_slope: 0.0,
                mode: crate::init::FanMode::FanIn,
            },
            bias_init: Init::Zeros,
            dtype: DType::F32,
        }
    }

    /// The output `[channels, height, width]` for an input `[channels, height, width]`, or an
    /// error when the input does not fit (wrong channels, a window larger than the padded input).
    pub fn output_shape(&self, input: [usize; 3]) -> Result<[usize; 3]> {
        let d = self.weight.shape();
        let (out, kh, kw) = (d.dims()[0], d.dims()[2], d.dims()[3]);
        let inc = d.dims()[1] * self.options.groups;
        if input[0] != inc {
            return Err(Error::invalid(
                "Conv2d",
                format!("expects {inc} input channels, got {}", input[0]),
            ));
        }
        let o = &self.options;
        let side = |n: usize, k: usize, a: usize| -> Result<usize> {
            let span = o.dilation[a] * (k - 1) + 1;
            let padded = n + 2 * o.padding[a];
            if padded < span {
                return Err(Error::invalid(
                    "Conv2d",
                    format!(
                        "the {}x{} window (dilation {:?}) is larger than the padded input \
                         {:?}",
                        kh, kw, o.dilation, input
                    ),
                ));
            }
            Ok((padded - span) / o.stride[a] + 1)
        };
        Ok([out, side(input[1], kh, 0)?, side(input[2], kw, 1)?])
    }

    /// The weight `[out, in / groups, kh, kw]`.
    pub fn weight(&self) -> &Var {
        &self.weight
    }
}

impl Module for Conv2d {
    fn forward(&self, x: &Tensor, _ctx: &mut Ctx) -> Result<Tensor> {
        let b = self.bias.as_ref().map(Var::as_tensor);
        x.conv2d(&self.weight.as_tensor(), b.as_ref(), self.options)
    }

    fn visit(&self, f: &mut dyn FnMut(&str, &Var, VarKind)) {
        f("weight", &self.weight, VarKind::Parameter);
        if let Some(b) = &self.bias {
            f("bias", b, VarKind::Parameter);
        }
    }

    fn describe(&self) -> String {
        let d = self.weight.shape();
        let d = d.dims();
        let o = &self.options;
        let groups = if o.groups > 1 {
            format!(", groups {}", o.groups)
        } else {
            String::new()
        };
        format!(
            "Conv2d({} -> {}, {}x{}, stride {:?}, padding {:?}{groups})",
            d[1] * o.groups,
            d[0],
            d[2],
            d[3],
            o.stride,
            o.padding
        )
    }
}

/// The output side of a pooling window over `n` (with padding `p`, window `k`, stride `s`).
fn pooled_side(n: usize, k: usize, s: usize, p: usize) -> Option<usize> {
    (n + 2 * p).checked_sub(k).map(|r| r / s + 1)
}

macro_rules! pool {
    ($(#[$doc:meta])* $name:ident, $label:literal, $op:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy)]
        pub struct $name {
            pub options: Pool2dOptions,
        }

        impl $name {
            /// A `k x k` window moving by `k`.
            pub fn new(k: usize) -> Self {
                $name {
                    options: Pool2dOptions::square(k),
                }
            }

            /// The output `[channels, height, width]` for an input of that shape.
            pub fn output_shape(&self, input: [usize; 3]) -> Result<[usize; 3]> {
                let o = &self.options;
                let side = |a: usize| {
                    pooled_side(input[a + 1], o.kernel[a], o.stride[a].max(1), o.padding[a])
                };
                match (side(0), side(1)) {
                    (Some(h), Some(w)) if h > 0 && w > 0 => Ok([input[0], h, w]),
                    _ => Err(Error::invalid(
                        $label,
                        format!(
                            "the {:?} window does not fit the input {:?}",
                            o.kernel, input
                        ),
                    )),
                }
            }
        }

        impl Module for $name {
            fn forward(&self, x: &Tensor, _ctx: &mut Ctx) -> Result<Tensor> {
                x.$op(self.options)
            }
            fn describe(&self) -> String {
                format!(
                    "{}({:?}, stride {:?})",
                    $label, self.options.kernel, self.options.stride
                )
            }
        }
    };
}

pool!(
    /// The largest value of each window; the gradient goes to it (the first on ties).
    MaxPool2d,
    "MaxPool2d",
    max_pool2d
);
pool!(
    /// The mean of each window (padding counts as zeros).
    AvgPool2d,
    "AvgPool2d",
    avg_pool2d
);

/// `[N, C, H, W] -> [N, C]`: the mean of each channel (global average pooling).
#[derive(Debug, Clone, Copy, Default)]
pub struct GlobalAvgPool2d;

impl Module for GlobalAvgPool2d {
    fn forward(&self, x: &Tensor, _ctx: &mut Ctx) -> Result<Tensor> {
        if x.rank() != 4 {
            return Err(Error::bad_shape(
                "GlobalAvgPool2d",
                x.shape(),
                "expects a 4-D [batch, channels, height, width] input",
            ));
        }
        x.mean_dims(&[2, 3], false)
    }
    fn describe(&self) -> String {
        "GlobalAvgPool2d".into()
    }
}

/// `[N, d] -> [N, ...shape]`: gives flat rows (a CSV's pixels) their image shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reshape {
    pub shape: Vec<usize>,
}

impl Module for Reshape {
    fn forward(&self, x: &Tensor, _ctx: &mut Ctx) -> Result<Tensor> {
        let n = x.dims().first().copied().unwrap_or(0);
        let mut dims = vec![n];
        dims.extend(&self.shape);
        if dims.iter().product::<usize>() != x.elem_count() {
            return Err(Error::bad_shape(
                "Reshape",
                x.shape(),
                format!(
                    "each row has {} values, but {:?} needs {}",
                    x.elem_count() / n.max(1),
                    self.shape,
                    self.shape.iter().product::<usize>()
                ),
            ));
        }
        x.reshape(dims)
    }
    fn describe(&self) -> String {
        format!("Reshape({:?})", self.shape)
    }
}
