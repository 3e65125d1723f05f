//! Postern's inter-process messages: the one catalogue of wire types,
//! their framing, descriptor passing and peer credentials.
//!
//! The channel map (who talks to whom, and what travels with the frames):
//!
//! | channel | made by | messages | descriptors |
//! | --- | --- | --- | --- |
//! | master → queue runner | master, at fork | [`MasterToQueue`] / [`QueueToMaster`] | `NewFront`: the queue runner's end of a front channel |
//! | master ↔ front factory | master, at exec (the factory's fd 3) | [`MasterToFactory`] / [`FactoryToMaster`] | `Accepted`: the client's socket and the front's end of its queue channel |
//! | front ↔ queue runner | master, per connection | [`FrontToQueue`] / [`QueueToFront`] | `Opened`: the write end of a pipe the message goes into |
//! | queue runner ↔ delivery client | master, at fork | [`QueueToDelivery`] / [`DeliveryToQueue`] | `Deliver`: the message file, read-only |
//! | delivery client → master | master, at fork | [`DeliveryToMaster`] / [`MasterToDelivery`] | `Local`: the message, read-only, and the socket a local delivery agent reports on (see [`local`](crate::AgentJob)) |
//! | tool → master (control socket, mode 0666) | the tool connects | [`ControlHello`] / [`ControlReply`] | `Submit`: the message, in a file the tool wrote |
//!
//! The message body never crosses a socket: the front writes it into a
//! pipe whose other end only the queue runner holds (it copies the bytes
//! into the spool, counting them against MaxMessageSize, and closes the
//! pipe at commit, so nothing a front holds can change a committed
//! message), and the delivery client reads it from a read-only
//! descriptor. Decoding is strict: a frame over its channel's limit is refused
//! from its header alone, before anything is allocated for it; a body that
//! is not exactly one message of the channel's type, or that leaves bytes
//! over, is refused; either disconnects the peer. A compromised front must
//! not be able to crash or steer the queue runner.
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod catalogue;
mod channel;
pub mod frame;
mod local;
mod peer;
mod scm_rights;
mod sysexits;

pub use catalogue::*;
pub use channel::{Channel, ChannelError};
pub use local::*;
pub use peer::{peer, Peer};
pub use postern_smtp::params::{BodyType, DeliverBy, Notify, Orcpt, Ret};
pub use postern_smtp::QueueId;
pub use sysexits::Sysexit;

/// Frame limit for messages from a front: an envelope with thousands of
/// recipients fits; a 4 GiB length prefix does not.
pub const FRONT_LIMIT: usize = 1 << 20;
/// Frame limit for the small replies to a front.
pub const REPLY_LIMIT: usize = 64 << 10;
/// Frame limit between queue runner and delivery client.
pub const DELIVERY_LIMIT: usize = 4 << 20;
/// Frame limit between master and queue runner (a mailq listing of a
/// large queue travels this way).
pub const MASTER_LIMIT: usize = 8 << 20;
/// Frame limit for a tool's request on the control socket.
pub const CONTROL_REQUEST_LIMIT: usize = 1 << 20;

/// The front's end of its channel to the queue runner.
pub type FrontChannel = Channel<FrontToQueue, QueueToFront>;
/// The queue runner's end of a front's channel.
pub type QueueFrontChannel = Channel<QueueToFront, FrontToQueue>;
/// master's end of its channel to the queue runner.
pub type MasterQueueChannel = Channel<MasterToQueue, QueueToMaster>;
/// The queue runner's end of its channel to master.
pub type QueueMasterChannel = Channel<QueueToMaster, MasterToQueue>;
/// The queue runner's end of its channel to the delivery client.
pub type QueueDeliveryChannel = Channel<QueueToDelivery, DeliveryToQueue>;
/// The delivery client's end of its channel to the queue runner.
pub type DeliveryChannel = Channel<DeliveryToQueue, QueueToDelivery>;

/// A tool's end of the control socket.
pub type ToolChannel = Channel<ControlHello, ControlReply>;
/// master's end of a control connection.
pub type ControlChannel = Channel<ControlReply, ControlHello>;

/// master's end of its channel to a front factory.
pub type MasterFactoryChannel = Channel<MasterToFactory, FactoryToMaster>;
/// A front factory's end of its channel to master.
pub type FactoryChannel = Channel<FactoryToMaster, MasterToFactory>;

/// master ↔ front factory, from master's side.
pub fn master_factory_channel(stream: std::os::unix::net::UnixStream) -> MasterFactoryChannel {
    Channel::new(stream, REPLY_LIMIT, REPLY_LIMIT)
}

/// master ↔ front factory, from the factory's side.
pub fn factory_channel(stream: std::os::unix::net::UnixStream) -> FactoryChannel {
    Channel::new(stream, REPLY_LIMIT, REPLY_LIMIT)
}

/// The control socket, from a tool's side.
pub fn tool_channel(stream: std::os::unix::net::UnixStream) -> ToolChannel {
    Channel::new(stream, CONTROL_REQUEST_LIMIT, MASTER_LIMIT)
}

/// The control socket, from master's side.
pub fn control_channel(stream: std::os::unix::net::UnixStream) -> ControlChannel {
    Channel::new(stream, MASTER_LIMIT, CONTROL_REQUEST_LIMIT)
}

/// A front's channel, from the front's side.
pub fn front_channel(stream: std::os::unix::net::UnixStream) -> FrontChannel {
    Channel::new(stream, FRONT_LIMIT, REPLY_LIMIT)
}

/// A front's channel, from the queue runner's side.
pub fn queue_front_channel(stream: std::os::unix::net::UnixStream) -> QueueFrontChannel {
    // A front never sends descriptors: each one would sit in the queue
    // runner's table.
    Channel::new(stream, REPLY_LIMIT, FRONT_LIMIT).refusing_fds()
}

/// master ↔ queue runner, from master's side.
pub fn master_queue_channel(stream: std::os::unix::net::UnixStream) -> MasterQueueChannel {
    Channel::new(stream, MASTER_LIMIT, MASTER_LIMIT)
}

/// master ↔ queue runner, from the queue runner's side.
pub fn queue_master_channel(stream: std::os::unix::net::UnixStream) -> QueueMasterChannel {
    Channel::new(stream, MASTER_LIMIT, MASTER_LIMIT)
}

/// queue runner ↔ delivery client, from the queue runner's side.
pub fn queue_delivery_channel(stream: std::os::unix::net::UnixStream) -> QueueDeliveryChannel {
    Channel::new(stream, DELIVERY_LIMIT, DELIVERY_LIMIT)
}

/// The largest key request or reply: an RSA block of a 16384-bit key is
/// 2 KiB; anything near this limit is refused by the holder's checks.
pub const KEY_LIMIT: usize = 4 << 10;

/// A requester's channel to the key holder.
pub type KeyRequesterChannel = Channel<KeyRequest, KeyReply>;
/// The key holder's channel to one requester.
pub type KeyServingChannel = Channel<KeyReply, KeyRequest>;
/// master's (or the factory's) channel to the key holder.
pub type KeyRegistrarChannel = Channel<KeyHolderControl, KeyHolderReport>;
/// The key holder's channel from master or the factory.
pub type KeyHolderChannel = Channel<KeyHolderReport, KeyHolderControl>;

/// A requester's end. No descriptors either way.
pub fn key_requester_channel(stream: std::os::unix::net::UnixStream) -> KeyRequesterChannel {
    Channel::new(stream, KEY_LIMIT, KEY_LIMIT)
}

/// The holder's end of a requester's channel: a requester never sends
/// descriptors.
pub fn key_serving_channel(stream: std::os::unix::net::UnixStream) -> KeyServingChannel {
    Channel::new(stream, KEY_LIMIT, KEY_LIMIT).refusing_fds()
}

/// master's or the factory's end of its channel to the holder.
pub fn key_registrar_channel(stream: std::os::unix::net::UnixStream) -> KeyRegistrarChannel {
    Channel::new(stream, REPLY_LIMIT, REPLY_LIMIT)
}

/// The holder's end of a registrar's channel.
pub fn key_holder_channel(stream: std::os::unix::net::UnixStream) -> KeyHolderChannel {
    Channel::new(stream, REPLY_LIMIT, REPLY_LIMIT)
}

/// master ↔ delivery client, from master's side.
pub type MasterDeliveryChannel = Channel<MasterToDelivery, DeliveryToMaster>;
/// master ↔ delivery client, from the delivery client's side.
pub type DeliveryMasterChannel = Channel<DeliveryToMaster, MasterToDelivery>;

/// master ↔ delivery client, from master's side.
pub fn master_delivery_channel(stream: std::os::unix::net::UnixStream) -> MasterDeliveryChannel {
    Channel::new(stream, LOCAL_LIMIT, LOCAL_LIMIT)
}

/// master ↔ delivery client, from the delivery client's side.
pub fn delivery_master_channel(stream: std::os::unix::net::UnixStream) -> DeliveryMasterChannel {
    Channel::new(stream, LOCAL_LIMIT, LOCAL_LIMIT)
}

/// queue runner ↔ delivery client, from the delivery client's side.
pub fn delivery_channel(stream: std::os::unix::net::UnixStream) -> DeliveryChannel {
    Channel::new(stream, DELIVERY_LIMIT, DELIVERY_LIMIT)
}
