// Generated from amqp0-9-1.extended.xml by scripts/generate-methods.py. Do not edit.
// The AMQP 0-9-1 specification and RabbitMQ's extensions, (c) the AMQP Working Group
// and Broadcom, are distributed under the BSD license quoted in the spec.

import NIOCore

extension AMQP {
    /// Every method of AMQP 0-9-1 with RabbitMQ's extensions, as one value.
    public enum Method: Sendable, Hashable {
        case connectionStart(Connection.Start)
        case connectionStartOk(Connection.StartOk)
        case connectionSecure(Connection.Secure)
        case connectionSecureOk(Connection.SecureOk)
        case connectionTune(Connection.Tune)
        case connectionTuneOk(Connection.TuneOk)
        case connectionOpen(Connection.Open)
        case connectionOpenOk(Connection.OpenOk)
        case connectionClose(Connection.Close)
        case connectionCloseOk(Connection.CloseOk)
        case connectionBlocked(Connection.Blocked)
        case connectionUnblocked(Connection.Unblocked)
        case connectionUpdateSecret(Connection.UpdateSecret)
        case connectionUpdateSecretOk(Connection.UpdateSecretOk)
        case channelOpen(Channel.Open)
        case channelOpenOk(Channel.OpenOk)
        case channelFlow(Channel.Flow)
        case channelFlowOk(Channel.FlowOk)
        case channelClose(Channel.Close)
        case channelCloseOk(Channel.CloseOk)
        case exchangeDeclare(Exchange.Declare)
        case exchangeDeclareOk(Exchange.DeclareOk)
        case exchangeDelete(Exchange.Delete)
        case exchangeDeleteOk(Exchange.DeleteOk)
        case exchangeBind(Exchange.Bind)
        case exchangeBindOk(Exchange.BindOk)
        case exchangeUnbind(Exchange.Unbind)
        case exchangeUnbindOk(Exchange.UnbindOk)
        case queueDeclare(Queue.Declare)
        case queueDeclareOk(Queue.DeclareOk)
        case queueBind(Queue.Bind)
        case queueBindOk(Queue.BindOk)
        case queueUnbind(Queue.Unbind)
        case queueUnbindOk(Queue.UnbindOk)
        case queuePurge(Queue.Purge)
        case queuePurgeOk(Queue.PurgeOk)
        case queueDelete(Queue.Delete)
        case queueDeleteOk(Queue.DeleteOk)
        case basicQos(Basic.Qos)
        case basicQosOk(Basic.QosOk)
        case basicConsume(Basic.Consume)
        case basicConsumeOk(Basic.ConsumeOk)
        case basicCancel(Basic.Cancel)
        case basicCancelOk(Basic.CancelOk)
        case basicPublish(Basic.Publish)
        case basicReturn(Basic.Return)
        case basicDeliver(Basic.Deliver)
        case basicGet(Basic.Get)
        case basicGetOk(Basic.GetOk)
        case basicGetEmpty(Basic.GetEmpty)
        case basicAck(Basic.Ack)
        case basicReject(Basic.Reject)
        case basicRecoverAsync(Basic.RecoverAsync)
        case basicRecover(Basic.Recover)
        case basicRecoverOk(Basic.RecoverOk)
        case basicNack(Basic.Nack)
        case txSelect(Tx.Select)
        case txSelectOk(Tx.SelectOk)
        case txCommit(Tx.Commit)
        case txCommitOk(Tx.CommitOk)
        case txRollback(Tx.Rollback)
        case txRollbackOk(Tx.RollbackOk)
        case confirmSelect(Confirm.Select)
        case confirmSelectOk(Confirm.SelectOk)
    }
}

extension AMQP.Method {
    public var classID: UInt16 {
        switch self {
        case .connectionStart: return AMQP.Connection.Start.classID
        case .connectionStartOk: return AMQP.Connection.StartOk.classID
        case .connectionSecure: return AMQP.Connection.Secure.classID
        case .connectionSecureOk: return AMQP.Connection.SecureOk.classID
        case .connectionTune: return AMQP.Connection.Tune.classID
        case .connectionTuneOk: return AMQP.Connection.TuneOk.classID
        case .connectionOpen: return AMQP.Connection.Open.classID
        case .connectionOpenOk: return AMQP.Connection.OpenOk.classID
        case .connectionClose: return AMQP.Connection.Close.classID
        case .connectionCloseOk: return AMQP.Connection.CloseOk.classID
        case .connectionBlocked: return AMQP.Connection.Blocked.classID
        case .connectionUnblocked: return AMQP.Connection.Unblocked.classID
        case .connectionUpdateSecret: return AMQP.Connection.UpdateSecret.classID
        case .connectionUpdateSecretOk: return AMQP.Connection.UpdateSecretOk.classID
        case .channelOpen: return AMQP.Channel.Open.classID
        case .channelOpenOk: return AMQP.Channel.OpenOk.classID
        case .channelFlow: return AMQP.Channel.Flow.classID
        case .channelFlowOk: return AMQP.Channel.FlowOk.classID
        case .channelClose: return AMQP.Channel.Close.classID
        case .channelCloseOk: return AMQP.Channel.CloseOk.classID
        case .exchangeDeclare: return AMQP.Exchange.Declare.classID
        case .exchangeDeclareOk: return AMQP.Exchange.DeclareOk.classID
        case .exchangeDelete: return AMQP.Exchange.Delete.classID
        case .exchangeDeleteOk: return AMQP.Exchange.DeleteOk.classID
        case .exchangeBind: return AMQP.Exchange.Bind.classID
        case .exchangeBindOk: return AMQP.Exchange.BindOk.classID
        case .exchangeUnbind: return AMQP.Exchange.Unbind.classID
        case .exchangeUnbindOk: return AMQP.Exchange.UnbindOk.classID
        case .queueDeclare: return AMQP.Queue.Declare.classID
        case .queueDeclareOk: return AMQP.Queue.DeclareOk.classID
        case .queueBind: return AMQP.Queue.Bind.classID
        case .queueBindOk: return AMQP.Queue.BindOk.classID
        case .queueUnbind: return AMQP.Queue.Unbind.classID
        case .queueUnbindOk: return AMQP.Queue.UnbindOk.classID
        case .queuePurge: return AMQP.Queue.Purge.classID
        case .queuePurgeOk: return AMQP.Queue.PurgeOk.classID
        case .queueDelete: return AMQP.Queue.Delete.classID
        case .queueDeleteOk: return AMQP.Queue.DeleteOk.classID
        case .basicQos: return AMQP.Basic.Qos.classID
        case .basicQosOk: return AMQP.Basic.QosOk.classID
        case .basicConsume: return AMQP.Basic.Consume.classID
        case .basicConsumeOk: return AMQP.Basic.ConsumeOk.classID
        case .basicCancel: return AMQP.Basic.Cancel.classID
        case .basicCancelOk: return AMQP.Basic.CancelOk.classID
        case .basicPublish: return AMQP.Basic.Publish.classID
        case .basicReturn: return AMQP.Basic.Return.classID
        case .basicDeliver: return AMQP.Basic.Deliver.classID
        case .basicGet: return AMQP.Basic.Get.classID
        case .basicGetOk: return AMQP.Basic.GetOk.classID
        case .basicGetEmpty: return AMQP.Basic.GetEmpty.classID
        case .basicAck: return AMQP.Basic.Ack.classID
        case .basicReject: return AMQP.Basic.Reject.classID
        case .basicRecoverAsync: return AMQP.Basic.RecoverAsync.classID
        case .basicRecover: return AMQP.Basic.Recover.classID
        case .basicRecoverOk: return AMQP.Basic.RecoverOk.classID
        case .basicNack: return AMQP.Basic.Nack.classID
        case .txSelect: return AMQP.Tx.Select.classID
        case .txSelectOk: return AMQP.Tx.SelectOk.classID
        case .txCommit: return AMQP.Tx.Commit.classID
        case .txCommitOk: return AMQP.Tx.CommitOk.classID
        case .txRollback: return AMQP.Tx.Rollback.classID
        case .txRollbackOk: return AMQP.Tx.RollbackOk.classID
        case .confirmSelect: return AMQP.Confirm.Select.classID
        case .confirmSelectOk: return AMQP.Confirm.SelectOk.classID
        }
    }

    public var methodID: UInt16 {
        switch self {
        case .connectionStart: return AMQP.Connection.Start.methodID
        case .connectionStartOk: return AMQP.Connection.StartOk.methodID
        case .connectionSecure: return AMQP.Connection.Secure.methodID
        case .connectionSecureOk: return AMQP.Connection.SecureOk.methodID
        case .connectionTune: return AMQP.Connection.Tune.methodID
        case .connectionTuneOk: return AMQP.Connection.TuneOk.methodID
        case .connectionOpen: return AMQP.Connection.Open.methodID
        case .connectionOpenOk: return AMQP.Connection.OpenOk.methodID
        case .connectionClose: return AMQP.Connection.Close.methodID
        case .connectionCloseOk: return AMQP.Connection.CloseOk.methodID
        case .connectionBlocked: return AMQP.Connection.Blocked.methodID
        case .connectionUnblocked: return AMQP.Connection.Unblocked.methodID
        case .connectionUpdateSecret: return AMQP.Connection.UpdateSecret.methodID
        case .connectionUpdateSecretOk: return AMQP.Connection.UpdateSecretOk.methodID
        case .channelOpen: return AMQP.Channel.Open.methodID
        case .channelOpenOk: return AMQP.Channel.OpenOk.methodID
        case .channelFlow: return AMQP.Channel.Flow.methodID
        case .channelFlowOk: return AMQP.Channel.FlowOk.methodID
        case .channelClose: return AMQP.Channel.Close.methodID
        case .channelCloseOk: return AMQP.Channel.CloseOk.methodID
        case .exchangeDeclare: return AMQP.Exchange.Declare.methodID
        case .exchangeDeclareOk: return AMQP.Exchange.DeclareOk.methodID
        case .exchangeDelete: return AMQP.Exchange.Delete.methodID
        case .exchangeDeleteOk: return AMQP.Exchange.DeleteOk.methodID
        case .exchangeBind: return AMQP.Exchange.Bind.methodID
        case .exchangeBindOk: return AMQP.Exchange.BindOk.methodID
        case .exchangeUnbind: return AMQP.Exchange.Unbind.methodID
        case .exchangeUnbindOk: return AMQP.Exchange.UnbindOk.methodID
        case .queueDeclare: return AMQP.Queue.Declare.methodID
        case .queueDeclareOk: return AMQP.Queue.DeclareOk.methodID
        case .queueBind: return AMQP.Queue.Bind.methodID
        case .queueBindOk: return AMQP.Queue.BindOk.methodID
        case .queueUnbind: return AMQP.Queue.Unbind.methodID
        case .queueUnbindOk: return AMQP.Queue.UnbindOk.methodID
        case .queuePurge: return AMQP.Queue.Purge.methodID
        case .queuePurgeOk: return AMQP.Queue.PurgeOk.methodID
        case .queueDelete: return AMQP.Queue.Delete.methodID
        case .queueDeleteOk: return AMQP.Queue.DeleteOk.methodID
        case .basicQos: return AMQP.Basic.Qos.methodID
        case .basicQosOk: return AMQP.Basic.QosOk.methodID
        case .basicConsume: return AMQP.Basic.Consume.methodID
        case .basicConsumeOk: return AMQP.Basic.ConsumeOk.methodID
        case .basicCancel: return AMQP.Basic.Cancel.methodID
        case .basicCancelOk: return AMQP.Basic.CancelOk.methodID
        case .basicPublish: return AMQP.Basic.Publish.methodID
        case .basicReturn: return AMQP.Basic.Return.methodID
        case .basicDeliver: return AMQP.Basic.Deliver.methodID
        case .basicGet: return AMQP.Basic.Get.methodID
        case .basicGetOk: return AMQP.Basic.GetOk.methodID
        case .basicGetEmpty: return AMQP.Basic.GetEmpty.methodID
        case .basicAck: return AMQP.Basic.Ack.methodID
        case .basicReject: return AMQP.Basic.Reject.methodID
        case .basicRecoverAsync: return AMQP.Basic.RecoverAsync.methodID
        case .basicRecover: return AMQP.Basic.Recover.methodID
        case .basicRecoverOk: return AMQP.Basic.RecoverOk.methodID
        case .basicNack: return AMQP.Basic.Nack.methodID
        case .txSelect: return AMQP.Tx.Select.methodID
        case .txSelectOk: return AMQP.Tx.SelectOk.methodID
        case .txCommit: return AMQP.Tx.Commit.methodID
        case .txCommitOk: return AMQP.Tx.CommitOk.methodID
        case .txRollback: return AMQP.Tx.Rollback.methodID
        case .txRollbackOk: return AMQP.Tx.RollbackOk.methodID
        case .confirmSelect: return AMQP.Confirm.Select.methodID
        case .confirmSelectOk: return AMQP.Confirm.SelectOk.methodID
        }
    }

    /// The method's name as the spec writes it, such as `basic.publish`.
    public var name: String {
        switch self {
        case .connectionStart: return AMQP.Connection.Start.name
        case .connectionStartOk: return AMQP.Connection.StartOk.name
        case .connectionSecure: return AMQP.Connection.Secure.name
        case .connectionSecureOk: return AMQP.Connection.SecureOk.name
        case .connectionTune: return AMQP.Connection.Tune.name
        case .connectionTuneOk: return AMQP.Connection.TuneOk.name
        case .connectionOpen: return AMQP.Connection.Open.name
        case .connectionOpenOk: return AMQP.Connection.OpenOk.name
        case .connectionClose: return AMQP.Connection.Close.name
        case .connectionCloseOk: return AMQP.Connection.CloseOk.name
        case .connectionBlocked: return AMQP.Connection.Blocked.name
        case .connectionUnblocked: return AMQP.Connection.Unblocked.name
        case .connectionUpdateSecret: return AMQP.Connection.UpdateSecret.name
        case .connectionUpdateSecretOk: return AMQP.Connection.UpdateSecretOk.name
        case .channelOpen: return AMQP.Channel.Open.name
        case .channelOpenOk: return AMQP.Channel.OpenOk.name
        case .channelFlow: return AMQP.Channel.Flow.name
        case .channelFlowOk: return AMQP.Channel.FlowOk.name
        case .channelClose: return AMQP.Channel.Close.name
        case .channelCloseOk: return AMQP.Channel.CloseOk.name
        case .exchangeDeclare: return AMQP.Exchange.Declare.name
        case .exchangeDeclareOk: return AMQP.Exchange.DeclareOk.name
        case .exchangeDelete: return AMQP.Exchange.Delete.name
        case .exchangeDeleteOk: return AMQP.Exchange.DeleteOk.name
        case .exchangeBind: return AMQP.Exchange.Bind.name
        case .exchangeBindOk: return AMQP.Exchange.BindOk.name
        case .exchangeUnbind: return AMQP.Exchange.Unbind.name
        case .exchangeUnbindOk: return AMQP.Exchange.UnbindOk.name
        case .queueDeclare: return AMQP.Queue.Declare.name
        case .queueDeclareOk: return AMQP.Queue.DeclareOk.name
        case .queueBind: return AMQP.Queue.Bind.name
        case .queueBindOk: return AMQP.Queue.BindOk.name
        case .queueUnbind: return AMQP.Queue.Unbind.name
        case .queueUnbindOk: return AMQP.Queue.UnbindOk.name
        case .queuePurge: return AMQP.Queue.Purge.name
        case .queuePurgeOk: return AMQP.Queue.PurgeOk.name
        case .queueDelete: return AMQP.Queue.Delete.name
        case .queueDeleteOk: return AMQP.Queue.DeleteOk.name
        case .basicQos: return AMQP.Basic.Qos.name
        case .basicQosOk: return AMQP.Basic.QosOk.name
        case .basicConsume: return AMQP.Basic.Consume.name
        case .basicConsumeOk: return AMQP.Basic.ConsumeOk.name
        case .basicCancel: return AMQP.Basic.Cancel.name
        case .basicCancelOk: return AMQP.Basic.CancelOk.name
        case .basicPublish: return AMQP.Basic.Publish.name
        case .basicReturn: return AMQP.Basic.Return.name
        case .basicDeliver: return AMQP.Basic.Deliver.name
        case .basicGet: return AMQP.Basic.Get.name
        case .basicGetOk: return AMQP.Basic.GetOk.name
        case .basicGetEmpty: return AMQP.Basic.GetEmpty.name
        case .basicAck: return AMQP.Basic.Ack.name
        case .basicReject: return AMQP.Basic.Reject.name
        case .basicRecoverAsync: return AMQP.Basic.RecoverAsync.name
        case .basicRecover: return AMQP.Basic.Recover.name
        case .basicRecoverOk: return AMQP.Basic.RecoverOk.name
        case .basicNack: return AMQP.Basic.Nack.name
        case .txSelect: return AMQP.Tx.Select.name
        case .txSelectOk: return AMQP.Tx.SelectOk.name
        case .txCommit: return AMQP.Tx.Commit.name
        case .txCommitOk: return AMQP.Tx.CommitOk.name
        case .txRollback: return AMQP.Tx.Rollback.name
        case .txRollbackOk: return AMQP.Tx.RollbackOk.name
        case .confirmSelect: return AMQP.Confirm.Select.name
        case .confirmSelectOk: return AMQP.Confirm.SelectOk.name
        }
    }

    /// Whether the method expects a reply (the spec's `synchronous`).
    public var isSynchronous: Bool {
        switch self {
        case .connectionStart: return AMQP.Connection.Start.isSynchronous
        case .connectionStartOk: return AMQP.Connection.StartOk.isSynchronous
        case .connectionSecure: return AMQP.Connection.Secure.isSynchronous
        case .connectionSecureOk: return AMQP.Connection.SecureOk.isSynchronous
        case .connectionTune: return AMQP.Connection.Tune.isSynchronous
        case .connectionTuneOk: return AMQP.Connection.TuneOk.isSynchronous
        case .connectionOpen: return AMQP.Connection.Open.isSynchronous
        case .connectionOpenOk: return AMQP.Connection.OpenOk.isSynchronous
        case .connectionClose: return AMQP.Connection.Close.isSynchronous
        case .connectionCloseOk: return AMQP.Connection.CloseOk.isSynchronous
        case .connectionBlocked: return AMQP.Connection.Blocked.isSynchronous
        case .connectionUnblocked: return AMQP.Connection.Unblocked.isSynchronous
        case .connectionUpdateSecret: return AMQP.Connection.UpdateSecret.isSynchronous
        case .connectionUpdateSecretOk: return AMQP.Connection.UpdateSecretOk.isSynchronous
        case .channelOpen: return AMQP.Channel.Open.isSynchronous
        case .channelOpenOk: return AMQP.Channel.OpenOk.isSynchronous
        case .channelFlow: return AMQP.Channel.Flow.isSynchronous
        case .channelFlowOk: return AMQP.Channel.FlowOk.isSynchronous
        case .channelClose: return AMQP.Channel.Close.isSynchronous
        case .channelCloseOk: return AMQP.Channel.CloseOk.isSynchronous
        case .exchangeDeclare: return AMQP.Exchange.Declare.isSynchronous
        case .exchangeDeclareOk: return AMQP.Exchange.DeclareOk.isSynchronous
        case .exchangeDelete: return AMQP.Exchange.Delete.isSynchronous
        case .exchangeDeleteOk: return AMQP.Exchange.DeleteOk.isSynchronous
        case .exchangeBind: return AMQP.Exchange.Bind.isSynchronous
        case .exchangeBindOk: return AMQP.Exchange.BindOk.isSynchronous
        case .exchangeUnbind: return AMQP.Exchange.Unbind.isSynchronous
        case .exchangeUnbindOk: return AMQP.Exchange.UnbindOk.isSynchronous
        case .queueDeclare: return AMQP.Queue.Declare.isSynchronous
        case .queueDeclareOk: return AMQP.Queue.DeclareOk.isSynchronous
        case .queueBind: return AMQP.Queue.Bind.isSynchronous
        case .queueBindOk: return AMQP.Queue.BindOk.isSynchronous
        case .queueUnbind: return AMQP.Queue.Unbind.isSynchronous
        case .queueUnbindOk: return AMQP.Queue.UnbindOk.isSynchronous
        case .queuePurge: return AMQP.Queue.Purge.isSynchronous
        case .queuePurgeOk: return AMQP.Queue.PurgeOk.isSynchronous
        case .queueDelete: return AMQP.Queue.Delete.isSynchronous
        case .queueDeleteOk: return AMQP.Queue.DeleteOk.isSynchronous
        case .basicQos: return AMQP.Basic.Qos.isSynchronous
        case .basicQosOk: return AMQP.Basic.QosOk.isSynchronous
        case .basicConsume: return AMQP.Basic.Consume.isSynchronous
        case .basicConsumeOk: return AMQP.Basic.ConsumeOk.isSynchronous
        case .basicCancel: return AMQP.Basic.Cancel.isSynchronous
        case .basicCancelOk: return AMQP.Basic.CancelOk.isSynchronous
        case .basicPublish: return AMQP.Basic.Publish.isSynchronous
        case .basicReturn: return AMQP.Basic.Return.isSynchronous
        case .basicDeliver: return AMQP.Basic.Deliver.isSynchronous
        case .basicGet: return AMQP.Basic.Get.isSynchronous
        case .basicGetOk: return AMQP.Basic.GetOk.isSynchronous
        case .basicGetEmpty: return AMQP.Basic.GetEmpty.isSynchronous
        case .basicAck: return AMQP.Basic.Ack.isSynchronous
        case .basicReject: return AMQP.Basic.Reject.isSynchronous
        case .basicRecoverAsync: return AMQP.Basic.RecoverAsync.isSynchronous
        case .basicRecover: return AMQP.Basic.Recover.isSynchronous
        case .basicRecoverOk: return AMQP.Basic.RecoverOk.isSynchronous
        case .basicNack: return AMQP.Basic.Nack.isSynchronous
        case .txSelect: return AMQP.Tx.Select.isSynchronous
        case .txSelectOk: return AMQP.Tx.SelectOk.isSynchronous
        case .txCommit: return AMQP.Tx.Commit.isSynchronous
        case .txCommitOk: return AMQP.Tx.CommitOk.isSynchronous
        case .txRollback: return AMQP.Tx.Rollback.isSynchronous
        case .txRollbackOk: return AMQP.Tx.RollbackOk.isSynchronous
        case .confirmSelect: return AMQP.Confirm.Select.isSynchronous
        case .confirmSelectOk: return AMQP.Confirm.SelectOk.isSynchronous
        }
    }

    /// Whether a content header and body frames follow the method.
    public var hasContent: Bool {
        switch self {
        case .connectionStart: return AMQP.Connection.Start.hasContent
        case .connectionStartOk: return AMQP.Connection.StartOk.hasContent
        case .connectionSecure: return AMQP.Connection.Secure.hasContent
        case .connectionSecureOk: return AMQP.Connection.SecureOk.hasContent
        case .connectionTune: return AMQP.Connection.Tune.hasContent
        case .connectionTuneOk: return AMQP.Connection.TuneOk.hasContent
        case .connectionOpen: return AMQP.Connection.Open.hasContent
        case .connectionOpenOk: return AMQP.Connection.OpenOk.hasContent
        case .connectionClose: return AMQP.Connection.Close.hasContent
        case .connectionCloseOk: return AMQP.Connection.CloseOk.hasContent
        case .connectionBlocked: return AMQP.Connection.Blocked.hasContent
        case .connectionUnblocked: return AMQP.Connection.Unblocked.hasContent
        case .connectionUpdateSecret: return AMQP.Connection.UpdateSecret.hasContent
        case .connectionUpdateSecretOk: return AMQP.Connection.UpdateSecretOk.hasContent
        case .channelOpen: return AMQP.Channel.Open.hasContent
        case .channelOpenOk: return AMQP.Channel.OpenOk.hasContent
        case .channelFlow: return AMQP.Channel.Flow.hasContent
        case .channelFlowOk: return AMQP.Channel.FlowOk.hasContent
        case .channelClose: return AMQP.Channel.Close.hasContent
        case .channelCloseOk: return AMQP.Channel.CloseOk.hasContent
        case .exchangeDeclare: return AMQP.Exchange.Declare.hasContent
        case .exchangeDeclareOk: return AMQP.Exchange.DeclareOk.hasContent
        case .exchangeDelete: return AMQP.Exchange.Delete.hasContent
        case .exchangeDeleteOk: return AMQP.Exchange.DeleteOk.hasContent
        case .exchangeBind: return AMQP.Exchange.Bind.hasContent
        case .exchangeBindOk: return AMQP.Exchange.BindOk.hasContent
        case .exchangeUnbind: return AMQP.Exchange.Unbind.hasContent
        case .exchangeUnbindOk: return AMQP.Exchange.UnbindOk.hasContent
        case .queueDeclare: return AMQP.Queue.Declare.hasContent
        case .queueDeclareOk: return AMQP.Queue.DeclareOk.hasContent
        case .queueBind: return AMQP.Queue.Bind.hasContent
        case .queueBindOk: return AMQP.Queue.BindOk.hasContent
        case .queueUnbind: return AMQP.Queue.Unbind.hasContent
        case .queueUnbindOk: return AMQP.Queue.UnbindOk.hasContent
        case .queuePurge: return AMQP.Queue.Purge.hasContent
        case .queuePurgeOk: return AMQP.Queue.PurgeOk.hasContent
        case .queueDelete: return AMQP.Queue.Delete.hasContent
        case .queueDeleteOk: return AMQP.Queue.DeleteOk.hasContent
        case .basicQos: return AMQP.Basic.Qos.hasContent
        case .basicQosOk: return AMQP.Basic.QosOk.hasContent
        case .basicConsume: return AMQP.Basic.Consume.hasContent
        case .basicConsumeOk: return AMQP.Basic.ConsumeOk.hasContent
        case .basicCancel: return AMQP.Basic.Cancel.hasContent
        case .basicCancelOk: return AMQP.Basic.CancelOk.hasContent
        case .basicPublish: return AMQP.Basic.Publish.hasContent
        case .basicReturn: return AMQP.Basic.Return.hasContent
        case .basicDeliver: return AMQP.Basic.Deliver.hasContent
        case .basicGet: return AMQP.Basic.Get.hasContent
        case .basicGetOk: return AMQP.Basic.GetOk.hasContent
        case .basicGetEmpty: return AMQP.Basic.GetEmpty.hasContent
        case .basicAck: return AMQP.Basic.Ack.hasContent
        case .basicReject: return AMQP.Basic.Reject.hasContent
        case .basicRecoverAsync: return AMQP.Basic.RecoverAsync.hasContent
        case .basicRecover: return AMQP.Basic.Recover.hasContent
        case .basicRecoverOk: return AMQP.Basic.RecoverOk.hasContent
        case .basicNack: return AMQP.Basic.Nack.hasContent
        case .txSelect: return AMQP.Tx.Select.hasContent
        case .txSelectOk: return AMQP.Tx.SelectOk.hasContent
        case .txCommit: return AMQP.Tx.Commit.hasContent
        case .txCommitOk: return AMQP.Tx.CommitOk.hasContent
        case .txRollback: return AMQP.Tx.Rollback.hasContent
        case .txRollbackOk: return AMQP.Tx.RollbackOk.hasContent
        case .confirmSelect: return AMQP.Confirm.Select.hasContent
        case .confirmSelectOk: return AMQP.Confirm.SelectOk.hasContent
        }
    }

    /// Whether a server must accept the method.
    public var sentToServer: Bool {
        switch self {
        case .connectionStart: return AMQP.Connection.Start.sentToServer
        case .connectionStartOk: return AMQP.Connection.StartOk.sentToServer
        case .connectionSecure: return AMQP.Connection.Secure.sentToServer
        case .connectionSecureOk: return AMQP.Connection.SecureOk.sentToServer
        case .connectionTune: return AMQP.Connection.Tune.sentToServer
        case .connectionTuneOk: return AMQP.Connection.TuneOk.sentToServer
        case .connectionOpen: return AMQP.Connection.Open.sentToServer
        case .connectionOpenOk: return AMQP.Connection.OpenOk.sentToServer
        case .connectionClose: return AMQP.Connection.Close.sentToServer
        case .connectionCloseOk: return AMQP.Connection.CloseOk.sentToServer
        case .connectionBlocked: return AMQP.Connection.Blocked.sentToServer
        case .connectionUnblocked: return AMQP.Connection.Unblocked.sentToServer
        case .connectionUpdateSecret: return AMQP.Connection.UpdateSecret.sentToServer
        case .connectionUpdateSecretOk: return AMQP.Connection.UpdateSecretOk.sentToServer
        case .channelOpen: return AMQP.Channel.Open.sentToServer
        case .channelOpenOk: return AMQP.Channel.OpenOk.sentToServer
        case .channelFlow: return AMQP.Channel.Flow.sentToServer
        case .channelFlowOk: return AMQP.Channel.FlowOk.sentToServer
        case .channelClose: return AMQP.Channel.Close.sentToServer
        case .channelCloseOk: return AMQP.Channel.CloseOk.sentToServer
        case .exchangeDeclare: return AMQP.Exchange.Declare.sentToServer
        case .exchangeDeclareOk: return AMQP.Exchange.DeclareOk.sentToServer
        case .exchangeDelete: return AMQP.Exchange.Delete.sentToServer
        case .exchangeDeleteOk: return AMQP.Exchange.DeleteOk.sentToServer
        case .exchangeBind: return AMQP.Exchange.Bind.sentToServer
        case .exchangeBindOk: return AMQP.Exchange.BindOk.sentToServer
        case .exchangeUnbind: return AMQP.Exchange.Unbind.sentToServer
        case .exchangeUnbindOk: return AMQP.Exchange.UnbindOk.sentToServer
        case .queueDeclare: return AMQP.Queue.Declare.sentToServer
        case .queueDeclareOk: return AMQP.Queue.DeclareOk.sentToServer
        case .queueBind: return AMQP.Queue.Bind.sentToServer
        case .queueBindOk: return AMQP.Queue.BindOk.sentToServer
        case .queueUnbind: return AMQP.Queue.Unbind.sentToServer
        case .queueUnbindOk: return AMQP.Queue.UnbindOk.sentToServer
        case .queuePurge: return AMQP.Queue.Purge.sentToServer
        case .queuePurgeOk: return AMQP.Queue.PurgeOk.sentToServer
        case .queueDelete: return AMQP.Queue.Delete.sentToServer
        case .queueDeleteOk: return AMQP.Queue.DeleteOk.sentToServer
        case .basicQos: return AMQP.Basic.Qos.sentToServer
        case .basicQosOk: return AMQP.Basic.QosOk.sentToServer
        case .basicConsume: return AMQP.Basic.Consume.sentToServer
        case .basicConsumeOk: return AMQP.Basic.ConsumeOk.sentToServer
        case .basicCancel: return AMQP.Basic.Cancel.sentToServer
        case .basicCancelOk: return AMQP.Basic.CancelOk.sentToServer
        case .basicPublish: return AMQP.Basic.Publish.sentToServer
        case .basicReturn: return AMQP.Basic.Return.sentToServer
        case .basicDeliver: return AMQP.Basic.Deliver.sentToServer
        case .basicGet: return AMQP.Basic.Get.sentToServer
        case .basicGetOk: return AMQP.Basic.GetOk.sentToServer
        case .basicGetEmpty: return AMQP.Basic.GetEmpty.sentToServer
        case .basicAck: return AMQP.Basic.Ack.sentToServer
        case .basicReject: return AMQP.Basic.Reject.sentToServer
        case .basicRecoverAsync: return AMQP.Basic.RecoverAsync.sentToServer
        case .basicRecover: return AMQP.Basic.Recover.sentToServer
        case .basicRecoverOk: return AMQP.Basic.RecoverOk.sentToServer
        case .basicNack: return AMQP.Basic.Nack.sentToServer
        case .txSelect: return AMQP.Tx.Select.sentToServer
        case .txSelectOk: return AMQP.Tx.SelectOk.sentToServer
        case .txCommit: return AMQP.Tx.Commit.sentToServer
        case .txCommitOk: return AMQP.Tx.CommitOk.sentToServer
        case .txRollback: return AMQP.Tx.Rollback.sentToServer
        case .txRollbackOk: return AMQP.Tx.RollbackOk.sentToServer
        case .confirmSelect: return AMQP.Confirm.Select.sentToServer
        case .confirmSelectOk: return AMQP.Confirm.SelectOk.sentToServer
        }
    }

    /// Whether a client must accept the method.
    public var sentToClient: Bool {
        switch self {
        case .connectionStart: return AMQP.Connection.Start.sentToClient
        case .connectionStartOk: return AMQP.Connection.StartOk.sentToClient
        case .connectionSecure: return AMQP.Connection.Secure.sentToClient
        case .connectionSecureOk: return AMQP.Connection.SecureOk.sentToClient
        case .connectionTune: return AMQP.Connection.Tune.sentToClient
        case .connectionTuneOk: return AMQP.Connection.TuneOk.sentToClient
        case .connectionOpen: return AMQP.Connection.Open.sentToClient
        case .connectionOpenOk: return AMQP.Connection.OpenOk.sentToClient
        case .connectionClose: return AMQP.Connection.Close.sentToClient
        case .connectionCloseOk: return AMQP.Connection.CloseOk.sentToClient
        case .connectionBlocked: return AMQP.Connection.Blocked.sentToClient
        case .connectionUnblocked: return AMQP.Connection.Unblocked.sentToClient
        case .connectionUpdateSecret: return AMQP.Connection.UpdateSecret.sentToClient
        case .connectionUpdateSecretOk: return AMQP.Connection.UpdateSecretOk.sentToClient
        case .channelOpen: return AMQP.Channel.Open.sentToClient
        case .channelOpenOk: return AMQP.Channel.OpenOk.sentToClient
        case .channelFlow: return AMQP.Channel.Flow.sentToClient
        case .channelFlowOk: return AMQP.Channel.FlowOk.sentToClient
        case .channelClose: return AMQP.Channel.Close.sentToClient
        case .channelCloseOk: return AMQP.Channel.CloseOk.sentToClient
        case .exchangeDeclare: return AMQP.Exchange.Declare.sentToClient
        case .exchangeDeclareOk: return AMQP.Exchange.DeclareOk.sentToClient
        case .exchangeDelete: return AMQP.Exchange.Delete.sentToClient
        case .exchangeDeleteOk: return AMQP.Exchange.DeleteOk.sentToClient
        case .exchangeBind: return AMQP.Exchange.Bind.sentToClient
        case .exchangeBindOk: return AMQP.Exchange.BindOk.sentToClient
        case .exchangeUnbind: return AMQP.Exchange.Unbind.sentToClient
        case .exchangeUnbindOk: return AMQP.Exchange.UnbindOk.sentToClient
        case .queueDeclare: return AMQP.Queue.Declare.sentToClient
        case .queueDeclareOk: return AMQP.Queue.DeclareOk.sentToClient
        case .queueBind: return AMQP.Queue.Bind.sentToClient
        case .queueBindOk: return AMQP.Queue.BindOk.sentToClient
        case .queueUnbind: return AMQP.Queue.Unbind.sentToClient
        case .queueUnbindOk: return AMQP.Queue.UnbindOk.sentToClient
        case .queuePurge: return AMQP.Queue.Purge.sentToClient
        case .queuePurgeOk: return AMQP.Queue.PurgeOk.sentToClient
        case .queueDelete: return AMQP.Queue.Delete.sentToClient
        case .queueDeleteOk: return AMQP.Queue.DeleteOk.sentToClient
        case .basicQos: return AMQP.Basic.Qos.sentToClient
        case .basicQosOk: return AMQP.Basic.QosOk.sentToClient
        case .basicConsume: return AMQP.Basic.Consume.sentToClient
        case .basicConsumeOk: return AMQP.Basic.ConsumeOk.sentToClient
        case .basicCancel: return AMQP.Basic.Cancel.sentToClient
        case .basicCancelOk: return AMQP.Basic.CancelOk.sentToClient
        case .basicPublish: return AMQP.Basic.Publish.sentToClient
        case .basicReturn: return AMQP.Basic.Return.sentToClient
        case .basicDeliver: return AMQP.Basic.Deliver.sentToClient
        case .basicGet: return AMQP.Basic.Get.sentToClient
        case .basicGetOk: return AMQP.Basic.GetOk.sentToClient
        case .basicGetEmpty: return AMQP.Basic.GetEmpty.sentToClient
        case .basicAck: return AMQP.Basic.Ack.sentToClient
        case .basicReject: return AMQP.Basic.Reject.sentToClient
        case .basicRecoverAsync: return AMQP.Basic.RecoverAsync.sentToClient
        case .basicRecover: return AMQP.Basic.Recover.sentToClient
        case .basicRecoverOk: return AMQP.Basic.RecoverOk.sentToClient
        case .basicNack: return AMQP.Basic.Nack.sentToClient
        case .txSelect: return AMQP.Tx.Select.sentToClient
        case .txSelectOk: return AMQP.Tx.SelectOk.sentToClient
        case .txCommit: return AMQP.Tx.Commit.sentToClient
        case .txCommitOk: return AMQP.Tx.CommitOk.sentToClient
        case .txRollback: return AMQP.Tx.Rollback.sentToClient
        case .txRollbackOk: return AMQP.Tx.RollbackOk.sentToClient
        case .confirmSelect: return AMQP.Confirm.Select.sentToClient
        case .confirmSelectOk: return AMQP.Confirm.SelectOk.sentToClient
        }
    }

    /// Decodes a method frame's payload: class id, method id and arguments.
    /// Unknown ids throw `.unknownMethod`, short payloads `.truncated`.
    public init(from buffer: inout ByteBuffer) throws(ProtocolError) {
        let classID = try buffer.readAMQPShort()
        let methodID = try buffer.readAMQPShort()
        switch (classID, methodID) {
        case (10, 10): self = .connectionStart(try .init(arguments: &buffer))
        case (10, 11): self = .connectionStartOk(try .init(arguments: &buffer))
        case (10, 20): self = .connectionSecure(try .init(arguments: &buffer))
        case (10, 21): self = .connectionSecureOk(try .init(arguments: &buffer))
        case (10, 30): self = .connectionTune(try .init(arguments: &buffer))
        case (10, 31): self = .connectionTuneOk(try .init(arguments: &buffer))
        case (10, 40): self = .connectionOpen(try .init(arguments: &buffer))
        case (10, 41): self = .connectionOpenOk(try .init(arguments: &buffer))
        case (10, 50): self = .connectionClose(try .init(arguments: &buffer))
        case (10, 51): self = .connectionCloseOk(try .init(arguments: &buffer))
        case (10, 60): self = .connectionBlocked(try .init(arguments: &buffer))
        case (10, 61): self = .connectionUnblocked(try .init(arguments: &buffer))
        case (10, 70): self = .connectionUpdateSecret(try .init(arguments: &buffer))
        case (10, 71): self = .connectionUpdateSecretOk(try .init(arguments: &buffer))
        case (20, 10): self = .channelOpen(try .init(arguments: &buffer))
        case (20, 11): self = .channelOpenOk(try .init(arguments: &buffer))
        case (20, 20): self = .channelFlow(try .init(arguments: &buffer))
        case (20, 21): self = .channelFlowOk(try .init(arguments: &buffer))
        case (20, 40): self = .channelClose(try .init(arguments: &buffer))
        case (20, 41): self = .channelCloseOk(try .init(arguments: &buffer))
        case (40, 10): self = .exchangeDeclare(try .init(arguments: &buffer))
        case (40, 11): self = .exchangeDeclareOk(try .init(arguments: &buffer))
        case (40, 20): self = .exchangeDelete(try .init(arguments: &buffer))
        case (40, 21): self = .exchangeDeleteOk(try .init(arguments: &buffer))
        case (40, 30): self = .exchangeBind(try .init(arguments: &buffer))
        case (40, 31): self = .exchangeBindOk(try .init(arguments: &buffer))
        case (40, 40): self = .exchangeUnbind(try .init(arguments: &buffer))
        case (40, 51): self = .exchangeUnbindOk(try .init(arguments: &buffer))
        case (50, 10): self = .queueDeclare(try .init(arguments: &buffer))
        case (50, 11): self = .queueDeclareOk(try .init(arguments: &buffer))
        case (50, 20): self = .queueBind(try .init(arguments: &buffer))
        case (50, 21): self = .queueBindOk(try .init(arguments: &buffer))
        case (50, 50): self = .queueUnbind(try .init(arguments: &buffer))
        case (50, 51): self = .queueUnbindOk(try .init(arguments: &buffer))
        case (50, 30): self = .queuePurge(try .init(arguments: &buffer))
        case (50, 31): self = .queuePurgeOk(try .init(arguments: &buffer))
        case (50, 40): self = .queueDelete(try .init(arguments: &buffer))
        case (50, 41): self = .queueDeleteOk(try .init(arguments: &buffer))
        case (60, 10): self = .basicQos(try .init(arguments: &buffer))
        case (60, 11): self = .basicQosOk(try .init(arguments: &buffer))
        case (60, 20): self = .basicConsume(try .init(arguments: &buffer))
        case (60, 21): self = .basicConsumeOk(try .init(arguments: &buffer))
        case (60, 30): self = .basicCancel(try .init(arguments: &buffer))
        case (60, 31): self = .basicCancelOk(try .init(arguments: &buffer))
        case (60, 40): self = .basicPublish(try .init(arguments: &buffer))
        case (60, 50): self = .basicReturn(try .init(arguments: &buffer))
        case (60, 60): self = .basicDeliver(try .init(arguments: &buffer))
        case (60, 70): self = .basicGet(try .init(arguments: &buffer))
        case (60, 71): self = .basicGetOk(try .init(arguments: &buffer))
        case (60, 72): self = .basicGetEmpty(try .init(arguments: &buffer))
        case (60, 80): self = .basicAck(try .init(arguments: &buffer))
        case (60, 90): self = .basicReject(try .init(arguments: &buffer))
        case (60, 100): self = .basicRecoverAsync(try .init(arguments: &buffer))
        case (60, 110): self = .basicRecover(try .init(arguments: &buffer))
        case (60, 111): self = .basicRecoverOk(try .init(arguments: &buffer))
        case (60, 120): self = .basicNack(try .init(arguments: &buffer))
        case (90, 10): self = .txSelect(try .init(arguments: &buffer))
        case (90, 11): self = .txSelectOk(try .init(arguments: &buffer))
        case (90, 20): self = .txCommit(try .init(arguments: &buffer))
        case (90, 21): self = .txCommitOk(try .init(arguments: &buffer))
        case (90, 30): self = .txRollback(try .init(arguments: &buffer))
        case (90, 31): self = .txRollbackOk(try .init(arguments: &buffer))
        case (85, 10): self = .confirmSelect(try .init(arguments: &buffer))
        case (85, 11): self = .confirmSelectOk(try .init(arguments: &buffer))
        default: throw ProtocolError(.unknownMethod, "unknown method \(classID).\(methodID)")
        }
    }

    /// Encodes class id, method id and arguments: a method frame's payload.
    public func encode(into buffer: inout ByteBuffer) throws(ProtocolError) {
        buffer.writeInteger(self.classID)
        buffer.writeInteger(self.methodID)
        switch self {
        case .connectionStart(let method): try method.encodeArguments(into: &buffer)
        case .connectionStartOk(let method): try method.encodeArguments(into: &buffer)
        case .connectionSecure(let method): try method.encodeArguments(into: &buffer)
        case .connectionSecureOk(let method): try method.encodeArguments(into: &buffer)
        case .connectionTune(let method): try method.encodeArguments(into: &buffer)
        case .connectionTuneOk(let method): try method.encodeArguments(into: &buffer)
        case .connectionOpen(let method): try method.encodeArguments(into: &buffer)
        case .connectionOpenOk(let method): try method.encodeArguments(into: &buffer)
        case .connectionClose(let method): try method.encodeArguments(into: &buffer)
        case .connectionCloseOk(let method): try method.encodeArguments(into: &buffer)
        case .connectionBlocked(let method): try method.encodeArguments(into: &buffer)
        case .connectionUnblocked(let method): try method.encodeArguments(into: &buffer)
        case .connectionUpdateSecret(let method): try method.encodeArguments(into: &buffer)
        case .connectionUpdateSecretOk(let method): try method.encodeArguments(into: &buffer)
        case .channelOpen(let method): try method.encodeArguments(into: &buffer)
        case .channelOpenOk(let method): try method.encodeArguments(into: &buffer)
        case .channelFlow(let method): try method.encodeArguments(into: &buffer)
        case .channelFlowOk(let method): try method.encodeArguments(into: &buffer)
        case .channelClose(let method): try method.encodeArguments(into: &buffer)
        case .channelCloseOk(let method): try method.encodeArguments(into: &buffer)
        case .exchangeDeclare(let method): try method.encodeArguments(into: &buffer)
        case .exchangeDeclareOk(let method): try method.encodeArguments(into: &buffer)
        case .exchangeDelete(let method): try method.encodeArguments(into: &buffer)
        case .exchangeDeleteOk(let method): try method.encodeArguments(into: &buffer)
        case .exchangeBind(let method): try method.encodeArguments(into: &buffer)
        case .exchangeBindOk(let method): try method.encodeArguments(into: &buffer)
        case .exchangeUnbind(let method): try method.encodeArguments(into: &buffer)
        case .exchangeUnbindOk(let method): try method.encodeArguments(into: &buffer)
        case .queueDeclare(let method): try method.encodeArguments(into: &buffer)
        case .queueDeclareOk(let method): try method.encodeArguments(into: &buffer)
        case .queueBind(let method): try method.encodeArguments(into: &buffer)
        case .queueBindOk(let method): try method.encodeArguments(into: &buffer)
        case .queueUnbind(let method): try method.encodeArguments(into: &buffer)
        case .queueUnbindOk(let method): try method.encodeArguments(into: &buffer)
        case .queuePurge(let method): try method.encodeArguments(into: &buffer)
        case .queuePurgeOk(let method): try method.encodeArguments(into: &buffer)
        case .queueDelete(let method): try method.encodeArguments(into: &buffer)
        case .queueDeleteOk(let method): try method.encodeArguments(into: &buffer)
        case .basicQos(let method): try method.encodeArguments(into: &buffer)
        case .basicQosOk(let method): try method.encodeArguments(into: &buffer)
        case .basicConsume(let method): try method.encodeArguments(into: &buffer)
        case .basicConsumeOk(let method): try method.encodeArguments(into: &buffer)
        case .basicCancel(let method): try method.encodeArguments(into: &buffer)
        case .basicCancelOk(let method): try method.encodeArguments(into: &buffer)
        case .basicPublish(let method): try method.encodeArguments(into: &buffer)
        case .basicReturn(let method): try method.encodeArguments(into: &buffer)
        case .basicDeliver(let method): try method.encodeArguments(into: &buffer)
        case .basicGet(let method): try method.encodeArguments(into: &buffer)
        case .basicGetOk(let method): try method.encodeArguments(into: &buffer)
        case .basicGetEmpty(let method): try method.encodeArguments(into: &buffer)
        case .basicAck(let method): try method.encodeArguments(into: &buffer)
        case .basicReject(let method): try method.encodeArguments(into: &buffer)
        case .basicRecoverAsync(let method): try method.encodeArguments(into: &buffer)
        case .basicRecover(let method): try method.encodeArguments(into: &buffer)
        case .basicRecoverOk(let method): try method.encodeArguments(into: &buffer)
        case .basicNack(let method): try method.encodeArguments(into: &buffer)
        case .txSelect(let method): try method.encodeArguments(into: &buffer)
        case .txSelectOk(let method): try method.encodeArguments(into: &buffer)
        case .txCommit(let method): try method.encodeArguments(into: &buffer)
        case .txCommitOk(let method): try method.encodeArguments(into: &buffer)
        case .txRollback(let method): try method.encodeArguments(into: &buffer)
        case .txRollbackOk(let method): try method.encodeArguments(into: &buffer)
        case .confirmSelect(let method): try method.encodeArguments(into: &buffer)
        case .confirmSelectOk(let method): try method.encodeArguments(into: &buffer)
        }
    }
}

extension AMQP.Connection.Start {
    @inlinable
    public var asMethod: AMQP.Method { .connectionStart(self) }
}

extension AMQP.Connection.StartOk {
    @inlinable
    public var asMethod: AMQP.Method { .connectionStartOk(self) }
}

extension AMQP.Connection.Secure {
    @inlinable
    public var asMethod: AMQP.Method { .connectionSecure(self) }
}

extension AMQP.Connection.SecureOk {
    @inlinable
    public var asMethod: AMQP.Method { .connectionSecureOk(self) }
}

extension AMQP.Connection.Tune {
    @inlinable
    public var asMethod: AMQP.Method { .connectionTune(self) }
}

extension AMQP.Connection.TuneOk {
    @inlinable
    public var asMethod: AMQP.Method { .connectionTuneOk(self) }
}

extension AMQP.Connection.Open {
    @inlinable
    public var asMethod: AMQP.Method { .connectionOpen(self) }
}

extension AMQP.Connection.OpenOk {
    @inlinable
    public var asMethod: AMQP.Method { .connectionOpenOk(self) }
}

extension AMQP.Connection.Close {
    @inlinable
    public var asMethod: AMQP.Method { .connectionClose(self) }
}

extension AMQP.Connection.CloseOk {
    @inlinable
    public var asMethod: AMQP.Method { .connectionCloseOk(self) }
}

extension AMQP.Connection.Blocked {
    @inlinable
    public var asMethod: AMQP.Method { .connectionBlocked(self) }
}

extension AMQP.Connection.Unblocked {
    @inlinable
    public var asMethod: AMQP.Method { .connectionUnblocked(self) }
}

extension AMQP.Connection.UpdateSecret {
    @inlinable
    public var asMethod: AMQP.Method { .connectionUpdateSecret(self) }
}

extension AMQP.Connection.UpdateSecretOk {
    @inlinable
    public var asMethod: AMQP.Method { .connectionUpdateSecretOk(self) }
}

extension AMQP.Channel.Open {
    @inlinable
    public var asMethod: AMQP.Method { .channelOpen(self) }
}

extension AMQP.Channel.OpenOk {
    @inlinable
    public var asMethod: AMQP.Method { .channelOpenOk(self) }
}

extension AMQP.Channel.Flow {
    @inlinable
    public var asMethod: AMQP.Method { .channelFlow(self) }
}

extension AMQP.Channel.FlowOk {
    @inlinable
    public var asMethod: AMQP.Method { .channelFlowOk(self) }
}

extension AMQP.Channel.Close {
    @inlinable
    public var asMethod: AMQP.Method { .channelClose(self) }
}

extension AMQP.Channel.CloseOk {
    @inlinable
    public var asMethod: AMQP.Method { .channelCloseOk(self) }
}

extension AMQP.Exchange.Declare {
    @inlinable
    public var asMethod: AMQP.Method { .exchangeDeclare(self) }
}

extension AMQP.Exchange.DeclareOk {
    @inlinable
    public var asMethod: AMQP.Method { .exchangeDeclareOk(self) }
}

extension AMQP.Exchange.Delete {
    @inlinable
    public var asMethod: AMQP.Method { .exchangeDelete(self) }
}

extension AMQP.Exchange.DeleteOk {
    @inlinable
    public var asMethod: AMQP.Method { .exchangeDeleteOk(self) }
}

extension AMQP.Exchange.Bind {
    @inlinable
    public var asMethod: AMQP.Method { .exchangeBind(self) }
}

extension AMQP.Exchange.BindOk {
    @inlinable
    public var asMethod: AMQP.Method { .exchangeBindOk(self) }
}

extension AMQP.Exchange.Unbind {
    @inlinable
    public var asMethod: AMQP.Method { .exchangeUnbind(self) }
}

extension AMQP.Exchange.UnbindOk {
    @inlinable
    public var asMethod: AMQP.Method { .exchangeUnbindOk(self) }
}

extension AMQP.Queue.Declare {
    @inlinable
    public var asMethod: AMQP.Method { .queueDeclare(self) }
}

extension AMQP.Queue.DeclareOk {
    @inlinable
    public var asMethod: AMQP.Method { .queueDeclareOk(self) }
}

extension AMQP.Queue.Bind {
    @inlinable
    public var asMethod: AMQP.Method { .queueBind(self) }
}

extension AMQP.Queue.BindOk {
    @inlinable
    public var asMethod: AMQP.Method { .queueBindOk(self) }
}

extension AMQP.Queue.Unbind {
    @inlinable
    public var asMethod: AMQP.Method { .queueUnbind(self) }
}

extension AMQP.Queue.UnbindOk {
    @inlinable
    public var asMethod: AMQP.Method { .queueUnbindOk(self) }
}

extension AMQP.Queue.Purge {
    @inlinable
    public var asMethod: AMQP.Method { .queuePurge(self) }
}

extension AMQP.Queue.PurgeOk {
    @inlinable
    public var asMethod: AMQP.Method { .queuePurgeOk(self) }
}

extension AMQP.Queue.Delete {
    @inlinable
    public var asMethod: AMQP.Method { .queueDelete(self) }
}

extension AMQP.Queue.DeleteOk {
    @inlinable
    public var asMethod: AMQP.Method { .queueDeleteOk(self) }
}

extension AMQP.Basic.Qos {
    @inlinable
    public var asMethod: AMQP.Method { .basicQos(self) }
}

extension AMQP.Basic.QosOk {
    @inlinable
    public var asMethod: AMQP.Method { .basicQosOk(self) }
}

extension AMQP.Basic.Consume {
    @inlinable
    public var asMethod: AMQP.Method { .basicConsume(self) }
}

extension AMQP.Basic.ConsumeOk {
    @inlinable
    public var asMethod: AMQP.Method { .basicConsumeOk(self) }
}

extension AMQP.Basic.Cancel {
    @inlinable
    public var asMethod: AMQP.Method { .basicCancel(self) }
}

extension AMQP.Basic.CancelOk {
    @inlinable
    public var asMethod: AMQP.Method { .basicCancelOk(self) }
}

extension AMQP.Basic.Publish {
    @inlinable
    public var asMethod: AMQP.Method { .basicPublish(self) }
}

extension AMQP.Basic.Return {
    @inlinable
    public var asMethod: AMQP.Method { .basicReturn(self) }
}

extension AMQP.Basic.Deliver {
    @inlinable
    public var asMethod: AMQP.Method { .basicDeliver(self) }
}

extension AMQP.Basic.Get {
    @inlinable
    public var asMethod: AMQP.Method { .basicGet(self) }
}

extension AMQP.Basic.GetOk {
    @inlinable
    public var asMethod: AMQP.Method { .basicGetOk(self) }
}

extension AMQP.Basic.GetEmpty {
    @inlinable
    public var asMethod: AMQP.Method { .basicGetEmpty(self) }
}

extension AMQP.Basic.Ack {
    @inlinable
    public var asMethod: AMQP.Method { .basicAck(self) }
}

extension AMQP.Basic.Reject {
    @inlinable
    public var asMethod: AMQP.Method { .basicReject(self) }
}

extension AMQP.Basic.RecoverAsync {
    @inlinable
    public var asMethod: AMQP.Method { .basicRecoverAsync(self) }
}

extension AMQP.Basic.Recover {
    @inlinable
    public var asMethod: AMQP.Method { .basicRecover(self) }
}

extension AMQP.Basic.RecoverOk {
    @inlinable
    public var asMethod: AMQP.Method { .basicRecoverOk(self) }
}

extension AMQP.Basic.Nack {
    @inlinable
    public var asMethod: AMQP.Method { .basicNack(self) }
}

extension AMQP.Tx.Select {
    @inlinable
    public var asMethod: AMQP.Method { .txSelect(self) }
}

extension AMQP.Tx.SelectOk {
    @inlinable
    public var asMethod: AMQP.Method { .txSelectOk(self) }
}

extension AMQP.Tx.Commit {
    @inlinable
    public var asMethod: AMQP.Method { .txCommit(self) }
}

extension AMQP.Tx.CommitOk {
    @inlinable
    public var asMethod: AMQP.Method { .txCommitOk(self) }
}

extension AMQP.Tx.Rollback {
    @inlinable
    public var asMethod: AMQP.Method { .txRollback(self) }
}

extension AMQP.Tx.RollbackOk {
    @inlinable
    public var asMethod: AMQP.Method { .txRollbackOk(self) }
}

extension AMQP.Confirm.Select {
    @inlinable
    public var asMethod: AMQP.Method { .confirmSelect(self) }
}

extension AMQP.Confirm.SelectOk {
    @inlinable
    public var asMethod: AMQP.Method { .confirmSelectOk(self) }
}
