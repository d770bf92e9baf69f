//! The few ONNX protobuf messages the Silero loader reads (field numbers from
//! `onnx/onnx.proto3`): the graph's nodes, to check the graph is the one implemented,
//! and its initializers, the weights. Unknown fields are skipped by prost.
use crate::error::{Result, WhisperError};
use prost::Message;

#[derive(Clone, PartialEq, Message)]
pub struct ModelProto {
    #[prost(int64, tag = "1")]
    pub ir_version: i64,
    #[prost(string, tag = "2")]
    pub producer_name: String,
    #[prost(message, optional, tag = "7")]
    pub graph: Option<GraphProto>,
}

#[derive(Clone, PartialEq, Message)]
pub struct GraphProto {
    #[prost(message, repeated, tag = "1")]
    pub node: Vec<NodeProto>,
    #[prost(message, repeated, tag = "5")]
    pub initializer: Vec<TensorProto>,
}

#[derive(Clone, PartialEq, Message)]
pub struct NodeProto {
    #[prost(string, repeated, tag = "1")]
    pub input: Vec<String>,
    #[prost(string, repeated, tag = "2")]
    pub output: Vec<String>,
    #[prost(string, tag = "4")]
    pub op_type: String,
    #[prost(message, repeated, tag = "5")]
    pub attribute: Vec<AttributeProto>,
}

#[derive(Clone, PartialEq, Message)]
pub struct AttributeProto {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(int64, tag = "3")]
    pub i: i64,
    #[prost(bytes = "vec", tag = "4")]
    pub s: Vec<u8>,
    #[prost(int64, repeated, tag = "8")]
    pub ints: Vec<i64>,
}

#[derive(Clone, PartialEq, Message)]
pub struct TensorProto {
    #[prost(int64, repeated, tag = "1")]
    pub dims: Vec<i64>,
    #[prost(int32, tag = "2")]
    pub data_type: i32,
    #[prost(float, repeated, tag = "4")]
    pub float_data: Vec<f32>,
    #[prost(int64, repeated, tag = "7")]
    pub int64_data: Vec<i64>,
    #[prost(string, tag = "8")]
    pub name: String,
    #[prost(bytes = "vec", tag = "9")]
    pub raw_data: Vec<u8>,
}

/// ONNX `TensorProto.DataType` codes read here.
const FLOAT: i32 = 1;
const INT64: i32 = 7;

impl ModelProto {
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let model = ModelProto::decode(bytes)
            .map_err(|e| WhisperError::Vad(format!("not an ONNX model: {e}")))?;
        if model.graph.is_none() {
            return Err(WhisperError::Vad("the ONNX model has no graph".into()));
        }
        Ok(model)
    }

    pub fn graph(&self) -> &GraphProto {
        self.graph.as_ref().expect("checked in parse")
    }
}

impl GraphProto {
    pub fn initializer(&self, name: &str) -> Result<&TensorProto> {
        self.initializer
            .iter()
            .find(|t| t.name == name)
            .ok_or_else(|| WhisperError::Vad(format!("the ONNX model lacks the tensor {name}")))
    }
}

impl NodeProto {
    pub fn ints(&self, name: &str) -> Option<&[i64]> {
        self.attribute
            .iter()
            .find(|a| a.name == name)
            .map(|a| a.ints.as_slice())
    }

    pub fn int(&self, name: &str) -> Option<i64> {
        self.attribute.iter().find(|a| a.name == name).map(|a| a.i)
    }

    pub fn string(&self, name: &str) -> Option<&[u8]> {
        self.attribute
            .iter()
            .find(|a| a.name == name)
            .map(|a| a.s.as_slice())
    }
}

impl TensorProto {
    fn len(&self) -> usize {
        self.dims.iter().map(|&d| d.max(0) as usize).product()
    }

    /// The values of a float tensor whose shape is `dims`.
    pub fn floats(&self, dims: &[usize]) -> Result<Vec<f32>> {
        let shape: Vec<usize> = self.dims.iter().map(|&d| d.max(0) as usize).collect();
        if self.data_type != FLOAT || shape != dims {
            return Err(WhisperError::Vad(format!(
                "tensor {}: expected float {dims:?}, found type {} {shape:?}",
                self.name, self.data_type
            )));
        }
        let values = if !self.raw_data.is_empty() {
            self.raw_data
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect()
        } else {
            self.float_data.clone()
        };
        self.checked(values)
    }

    /// The values of an int64 tensor.
    pub fn int64s(&self) -> Result<Vec<i64>> {
        if self.data_type != INT64 {
            return Err(WhisperError::Vad(format!(
                "tensor {}: expected int64, found type {}",
                self.name, self.data_type
            )));
        }
        let values = if !self.raw_data.is_empty() {
            self.raw_data
                .chunks_exact(8)
                .map(|b| i64::from_le_bytes(b.try_into().expect("8 bytes")))
                .collect()
        } else {
            self.int64_data.clone()
        };
        self.checked(values)
    }

    fn checked<T>(&self, values: Vec<T>) -> Result<Vec<T>> {
        if values.len() != self.len() {
            return Err(WhisperError::Vad(format!(
                "tensor {}: {} values for shape {:?}",
                self.name,
                values.len(),
                self.dims
            )));
        }
        Ok(values)
    }
}
