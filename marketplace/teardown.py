# Custom resource behind stack deletion: runs puffindb-destroy on the instance through SSM
# Run Command, waits for it (re-invoking itself before its own timeout), then empties the
# Terraform state bucket so CloudFormation can delete it. Create and Update do nothing.
import json, time, boto3, cfnresponse
ssm = boto3.client('ssm')
def done(event, context, ok, reason=''):
    cfnresponse.send(event, context, cfnresponse.SUCCESS if ok else cfnresponse.FAILED, {}, 'puffindb-teardown', reason=reason[:900])
def handler(event, context):
    p = event['ResourceProperties']
    try:
        if event['RequestType'] != 'Delete':
            return done(event, context, True)
        cid = event.get('PuffinCommandId')
        if not cid:
            try:
                cid = ssm.send_command(InstanceIds=[p['InstanceId']], DocumentName='AWS-RunShellScript', TimeoutSeconds=600,
                                       Parameters={'commands': [p['DestroyCommand']], 'executionTimeout': ['3300']})['Command']['CommandId']
            except ssm.exceptions.InvalidInstanceId as e:
                # Never reached SSM (failed launch): nothing was applied, or the state bucket keeps
                # the state and its deletion fails visibly, so nothing leaks silently.
                return done(event, context, True, 'instance unreachable: %s' % e)
        while context.get_remaining_time_in_millis() > 60000:
            time.sleep(15)
            try:
                inv = ssm.get_command_invocation(CommandId=cid, InstanceId=p['InstanceId'])
            except ssm.exceptions.InvocationDoesNotExist:
                continue
            if inv['Status'] in ('Pending', 'InProgress', 'Delayed'):
                continue
            if inv['Status'] != 'Success':
                return done(event, context, False, 'puffindb-destroy %s: %s' % (inv['Status'], inv.get('StandardErrorContent', '')[-600:]))
            boto3.resource('s3').Bucket(p['StateBucket']).object_versions.delete()
            return done(event, context, True)
        event['PuffinCommandId'] = cid
        boto3.client('lambda').invoke(FunctionName=context.function_name, InvocationType='Event', Payload=json.dumps(event))
    except Exception as e:
        print(e)
        done(event, context, False, str(e))
