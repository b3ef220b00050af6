//! NSS's server-to-server control message (`spb.CtrlMsg`), which the FT
//! heartbeat and partitioning's channel lists travel in.

/// `CtrlMsg.MsgType` of an FT heartbeat.
pub const FT_HEARTBEAT: i32 = 3;

/// `CtrlMsg.MsgType` of a partitioning channel list and its reply.
pub const PARTITIONING: i32 = 4;

/// `spb.CtrlMsg`, field for field.
#[derive(Clone, PartialEq, prost::Message)]
pub struct CtrlMsg {
    /// [`FT_HEARTBEAT`] or [`PARTITIONING`].
    #[prost(int32, tag = "1")]
    pub msg_type: i32,
    /// The sending server.
    #[prost(string, tag = "2")]
    pub server_id: String,
    /// What the message carries: an activation time, a channel list, the
    /// name of a conflicting channel.
    #[prost(bytes = "vec", tag = "3")]
    pub data: Vec<u8>,
}
