"""kira.retriever"""
