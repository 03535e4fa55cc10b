//! One subscriber group, two processes: they share its work (amqp).

use crate::support::amqp::{config, delete, URL};
use crate::support::group_share::{child_member, two_members_share_the_work, GROUP};

#[tokio::test]
#[ignore = "the child process of two_processes_in_one_group_share_the_work"]
async fn group_member_child() {
    child_member(config()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_in_one_group_share_the_work() {
    crate::support::init_tracing();
    let topic = two_members_share_the_work(config(), "amqp::groups::group_member_child").await;
    let group = format!("{topic}.{GROUP}");
    delete(URL, &[format!("{group}.dead"), group], &[topic]).await;
}
