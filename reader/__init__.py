"""kira.reader"""
